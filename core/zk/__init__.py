"""Zero-knowledge sanctions screening for ``cap-proof.v3`` (docs/adr/0011-zk-screening-scheme.md).

Pure building blocks: the BN254 scalar field and circomlib's Poseidon (:mod:`core.zk.poseidon`), the sanctions
gap tree (:mod:`core.zk.gaptree`), batch witness inputs (:mod:`core.zk.witness`), the Groth16 verifier on
``mclbn256`` (:mod:`core.zk.groth16`), and the snarkjs/circom toolchain adapter (:mod:`core.zk.toolchain`).
"""
