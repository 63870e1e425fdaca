// Compiles contracts/NGU.sol with the pinned npm `solc` into contracts/build/NGU.json (ABI + bytecode).
// Run: npm run compile. The artifact is committed, so tests need no compiler.
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const source = path.join(__dirname, "NGU.sol");
const input = {
  language: "Solidity",
  sources: { "NGU.sol": { content: fs.readFileSync(source, "utf8") } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    outputSelection: { "*": { NGU: ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const message of output.errors || []) console.error(message.formattedMessage);
if (errors.length) process.exit(1);

const contract = output.contracts["NGU.sol"].NGU;
const artifact = {
  contractName: "NGU",
  compiler: `solc ${solc.version()}`,
  abi: contract.abi,
  bytecode: "0x" + contract.evm.bytecode.object,
  deployedBytecode: "0x" + contract.evm.deployedBytecode.object,
};
const target = path.join(__dirname, "build", "NGU.json");
fs.writeFileSync(target, JSON.stringify(artifact, null, 2) + "\n");
console.log(`wrote ${path.relative(process.cwd(), target)} (${artifact.bytecode.length / 2 - 1} bytes)`);
