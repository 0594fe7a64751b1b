// Groth16-prove one witness with snarkjs in-process and print {"proof", "publicSignals"} as JSON on stdout.
// Usage: node prove.cjs <snarkjs main.cjs> <circuit.zkey> <witness.wtns> [seedHex]
// With seedHex (tests/golden vectors only) the prover's random blinding scalars r, s come from SHA-256(seed ‖ i):
// the proof is still sound but NOT zero-knowledge towards whoever knows the seed.
"use strict";
const crypto = require("crypto");
const [snarkjsPath, zkey, wtns, seedHex] = process.argv.slice(2);

if (seedHex) {
    let counter = 0;
    crypto.randomFillSync = (array) => {
        for (let off = 0; off < array.length; off += 32) {
            const block = crypto.createHash("sha256")
                .update(Buffer.from(seedHex, "hex"))
                .update(Buffer.from(String(counter++)))
                .digest();
            const n = Math.min(32, array.length - off);
            for (let i = 0; i < n; i++) array[off + i] = block[i];
        }
        return array;
    };
}

const snarkjs = require(snarkjsPath);

snarkjs.groth16.prove(zkey, wtns).then(({ proof, publicSignals }) => {
    process.stdout.write(JSON.stringify({ proof, publicSignals }));
    process.exit(0);
}, (err) => {
    process.stderr.write(String(err && err.stack || err) + "\n");
    process.exit(1);
});
