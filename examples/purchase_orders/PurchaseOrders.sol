// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title Purchase orders between one retailer and one distributor, with vendors added later.
/// @notice One instance is one confidential relationship. The retailer deploys it with a
/// confidential transaction (`conclave_sendRawPrivateTransaction` with `privateFor` the
/// distributor), so the contract, its orders, events and receipts are visible to the
/// retailer and that distributor only. A vendor the distributor assigns to an order becomes
/// a party through `isParty`, which the node consults; nobody else ever sees the contract.
///
/// Visibility is per contract, not per order: a vendor assigned to one order sees every
/// order of this relationship. A retailer who wants another distributor, or wants to keep
/// vendors apart, deploys another instance. That is also why the distributor is fixed at
/// deployment: an order for somebody else would make them a party of every order here.
///
/// The contract works the same as an ordinary, public contract on any EVM chain.
contract PurchaseOrders {
    enum Status {
        None,
        Created,
        Accepted,
        VendorAssigned
    }

    struct Order {
        uint256 id;
        address distributor;
        address vendor;
        string item;
        uint256 quantity;
        Status status;
        uint64 createdAt;
    }

    /// @notice Who deployed the contract and creates the orders.
    address public immutable retailer;
    /// @notice The one distributor every order of this relationship is assigned to.
    address public immutable distributor;
    /// @notice Orders created so far; ids run from 1 to `orderCount`.
    uint256 public orderCount;
    /// @notice How many orders each vendor is assigned to (non-zero: the vendor is a party).
    mapping(address => uint256) public vendorOrderCount;

    mapping(uint256 => Order) private _orders;

    event OrderCreated(
        uint256 indexed id,
        address indexed retailer,
        address indexed distributor,
        string item,
        uint256 quantity
    );
    event OrderAccepted(uint256 indexed id, address indexed distributor);
    event VendorAssigned(uint256 indexed id, address indexed distributor, address indexed vendor);

    error NotRetailer(address caller);
    error NotDistributor(address caller);
    error InvalidAddress(address who);
    error EmptyOrder();
    error NoSuchOrder(uint256 id);
    error WrongStatus(uint256 id, Status status);

    modifier onlyRetailer() {
        if (msg.sender != retailer) revert NotRetailer(msg.sender);
        _;
    }

    modifier onlyDistributor() {
        if (msg.sender != distributor) revert NotDistributor(msg.sender);
        _;
    }

    /// @param distributor_ the distributor of this relationship (not the retailer, not zero).
    constructor(address distributor_) {
        if (distributor_ == address(0) || distributor_ == msg.sender) revert InvalidAddress(distributor_);
        retailer = msg.sender;
        distributor = distributor_;
    }

    /// @notice The retailer orders `quantity` of `item` from the relationship's distributor.
    /// @return id the new order's id (1, 2, ...).
    function createOrder(string calldata item, uint256 quantity) external onlyRetailer returns (uint256 id) {
        if (quantity == 0 || bytes(item).length == 0) revert EmptyOrder();
        id = ++orderCount;
        _orders[id] = Order({
            id: id,
            distributor: distributor,
            vendor: address(0),
            item: item,
            quantity: quantity,
            status: Status.Created,
            createdAt: uint64(block.timestamp)
        });
        emit OrderCreated(id, msg.sender, distributor, item, quantity);
    }

    /// @notice The distributor accepts a created order.
    function acceptOrder(uint256 id) external onlyDistributor {
        Order storage order = _existing(id);
        if (order.status != Status.Created) revert WrongStatus(id, order.status);
        order.status = Status.Accepted;
        emit OrderAccepted(id, msg.sender);
    }

    /// @notice The distributor assigns a vendor to an accepted order; from then on the vendor
    /// is a party of this contract (see `isParty`).
    function assignVendor(uint256 id, address vendor) external onlyDistributor {
        if (vendor == address(0) || vendor == retailer || vendor == distributor) revert InvalidAddress(vendor);
        Order storage order = _existing(id);
        if (order.status != Status.Accepted) revert WrongStatus(id, order.status);
        order.vendor = vendor;
        order.status = Status.VendorAssigned;
        vendorOrderCount[vendor] += 1;
        emit VendorAssigned(id, msg.sender, vendor);
    }

    /// @notice One order (reverts with `NoSuchOrder` for an unknown id).
    function getOrder(uint256 id) external view returns (Order memory) {
        return _existing(id);
    }

    /// @notice Every order, oldest first (fine for a demo; page with `getOrder` for many).
    function getOrders() external view returns (Order[] memory orders) {
        orders = new Order[](orderCount);
        for (uint256 i = 0; i < orders.length; i++) orders[i] = _orders[i + 1];
    }

    /// @notice Who may see this contract beyond the parties it was created confidential to:
    /// the retailer, the distributor, and every vendor assigned to one of its orders. The
    /// node calls this statically with a small gas budget, so it reads mappings only.
    function isParty(address who) external view returns (bool) {
        return who == retailer || who == distributor || vendorOrderCount[who] > 0;
    }

    function _existing(uint256 id) private view returns (Order storage order) {
        order = _orders[id];
        if (order.status == Status.None) revert NoSuchOrder(id);
    }
}
