import { expect } from "chai";
import { network } from "hardhat";

const { ethers, networkHelpers } = await network.create();
const { loadFixture, setBalance, time } = networkHelpers;

const ONE_YEAR = 365 * 24 * 60 * 60;
const LOCKED = ethers.parseEther("1");

describe("TimeLockedVault on Conclave", function () {
  async function deployVault() {
    const [owner, other] = await ethers.getSigners();
    const unlockTime = (await time.latest()) + ONE_YEAR;
    const vault = await ethers.deployContract("TimeLockedVault", [unlockTime], { value: LOCKED });
    await vault.waitForDeployment();
    return { vault, unlockTime, owner, other };
  }

  it("is deployed with the unlock time and the ether", async function () {
    const { vault, unlockTime, owner } = await loadFixture(deployVault);
    expect(await vault.unlockTime()).to.equal(unlockTime);
    expect(await vault.owner()).to.equal(owner.address);
    expect(await ethers.provider.getBalance(await vault.getAddress())).to.equal(LOCKED);
  });

  it("refuses to pay out before the unlock time", async function () {
    const { vault } = await loadFixture(deployVault);
    await expect(vault.withdraw()).to.be.revertedWithCustomError(vault, "StillLocked");
  });

  it("pays its owner once the time has come", async function () {
    const { vault, unlockTime, owner } = await loadFixture(deployVault);
    await time.increaseTo(unlockTime);
    const withdrawal = vault.withdraw();
    await expect(withdrawal)
      .to.emit(vault, "Withdrawal")
      .withArgs(LOCKED, (when: bigint) => when >= BigInt(unlockTime));
    await expect(withdrawal).to.changeEtherBalances(ethers, [owner, vault], [LOCKED, -LOCKED]);
  });

  it("pays nobody else, even a rich account, a year later", async function () {
    const { vault, other } = await loadFixture(deployVault);
    await time.increase(ONE_YEAR);
    await setBalance(other.address, ethers.parseEther("1000000"));
    expect(await ethers.provider.getBalance(other.address)).to.equal(ethers.parseEther("1000000"));
    await expect(vault.connect(other).withdraw())
      .to.be.revertedWithCustomError(vault, "NotOwner")
      .withArgs(other.address);
  });

  it("starts again from the fixture: the vault is still locked", async function () {
    const { vault, unlockTime } = await loadFixture(deployVault);
    expect(await time.latest()).to.be.lessThan(unlockTime);
    expect(await ethers.provider.getBalance(await vault.getAddress())).to.equal(LOCKED);
  });
});
