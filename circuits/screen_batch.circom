pragma circom 2.1.6;

// cap-proof.v3 sanctions screening of one batch of committed suppliers (docs/formats/proof_v3.md,
// docs/adr/0011-zk-screening-scheme.md).
//
// Public:  batchRoot (output), gapRoot, activeCount.
// Private: per slot j < batchSize: enabled[j], key[j] (key248), salt[j], blakeLeaf[j] (BLAKE3 supplier leaf mod p),
//          the sanctions gap (lo, hi) the key falls into and its Merkle path in the gap tree.
//
// Statement:
//   * enabled is a prefix of ones whose length is activeCount (so 0 <= activeCount <= batchSize);
//   * slot leaf j = enabled[j] * Poseidon(key, salt, blakeLeaf): disabled slots are the 0 leaf;
//   * batchRoot = binary Poseidon tree over the batchSize slot leaves;
//   * every enabled key satisfies lo < key < hi for a gap leaf Poseidon(lo, hi) at depth `depth` under gapRoot.
//
// Soundness notes (review these when changing anything):
//   * The gap leaf's lo, hi come from the honest gap tree, so 0 <= lo < hi <= 2^keyBits < p / 4. The two
//     keyBits-bit range checks on key - lo - 1 and hi - key - 1 then sum to hi - lo - 2 < 2^(keyBits+1) without
//     wrap-around mod p, hence lo < key < hi as integers. No separate range check on key is needed.
//   * Padding leaves of the gap tree are 0, which has no known Poseidon preimage; the fixed depth rules out using
//     an inner node as a leaf.
//   * Path direction bits are constrained boolean; everything that feeds a hash is assigned with <== only.

include "poseidon.circom";
include "bitify.circom";

function ceilLog2(n) {
    var levels = 0;
    var width = 1;
    while (width < n) {
        width *= 2;
        levels += 1;
    }
    return levels;
}

// Root of a fixed-depth binary Poseidon tree from a leaf, its siblings and direction bits (1 = leaf on the right).
template MerkleRoot(depth) {
    signal input leaf;
    signal input siblings[depth];
    signal input pathBits[depth];
    signal output root;

    signal cur[depth + 1];
    signal left[depth];
    signal right[depth];
    component hashers[depth];
    cur[0] <== leaf;
    for (var i = 0; i < depth; i++) {
        pathBits[i] * (1 - pathBits[i]) === 0;
        left[i] <== cur[i] + pathBits[i] * (siblings[i] - cur[i]);
        right[i] <== siblings[i] + cur[i] - left[i];
        hashers[i] = Poseidon(2);
        hashers[i].inputs[0] <== left[i];
        hashers[i].inputs[1] <== right[i];
        cur[i + 1] <== hashers[i].out;
    }
    root <== cur[depth];
}

// Root of a complete binary Poseidon tree over 2^levels leaves.
template SubtreeRoot(levels) {
    var width = 1 << levels;
    signal input leaves[width];
    signal output root;

    signal nodes[2 * width - 1];
    component hashers[width - 1];
    for (var i = 0; i < width; i++) {
        nodes[width - 1 + i] <== leaves[i];
    }
    for (var i = width - 2; i >= 0; i--) {
        hashers[i] = Poseidon(2);
        hashers[i].inputs[0] <== nodes[2 * i + 1];
        hashers[i].inputs[1] <== nodes[2 * i + 2];
        nodes[i] <== hashers[i].out;
    }
    root <== nodes[0];
}

// One slot: its salted leaf (0 when disabled) and, when enabled, the key's strict inclusion in a listed gap.
template ScreenSlot(depth, keyBits) {
    signal input enabled;
    signal input key;
    signal input salt;
    signal input blakeLeaf;
    signal input lo;
    signal input hi;
    signal input siblings[depth];
    signal input pathBits[depth];
    signal input gapRoot;
    signal output leaf;

    component leafHash = Poseidon(3);
    leafHash.inputs[0] <== key;
    leafHash.inputs[1] <== salt;
    leafHash.inputs[2] <== blakeLeaf;
    leaf <== enabled * leafHash.out;

    signal below <== enabled * (key - lo - 1);
    signal above <== enabled * (hi - key - 1);
    component belowBits = Num2Bits(keyBits);
    belowBits.in <== below;
    component aboveBits = Num2Bits(keyBits);
    aboveBits.in <== above;

    component gapLeaf = Poseidon(2);
    gapLeaf.inputs[0] <== lo;
    gapLeaf.inputs[1] <== hi;
    component path = MerkleRoot(depth);
    path.leaf <== gapLeaf.out;
    for (var i = 0; i < depth; i++) {
        path.siblings[i] <== siblings[i];
        path.pathBits[i] <== pathBits[i];
    }
    enabled * (path.root - gapRoot) === 0;
}

template ScreenBatch(batchSize, depth, keyBits) {
    var levels = ceilLog2(batchSize);
    assert(batchSize == 1 << levels);
    assert(keyBits <= 250);

    signal input gapRoot;
    signal input activeCount;
    signal output batchRoot;

    signal input enabled[batchSize];
    signal input key[batchSize];
    signal input salt[batchSize];
    signal input blakeLeaf[batchSize];
    signal input lo[batchSize];
    signal input hi[batchSize];
    signal input siblings[batchSize][depth];
    signal input pathBits[batchSize][depth];

    // enabled = 1..1 0..0 with activeCount ones.
    var total = 0;
    for (var j = 0; j < batchSize; j++) {
        enabled[j] * (1 - enabled[j]) === 0;
        if (j > 0) {
            enabled[j] * (1 - enabled[j - 1]) === 0;
        }
        total += enabled[j];
    }
    activeCount === total;

    component slots[batchSize];
    component tree = SubtreeRoot(levels);
    for (var j = 0; j < batchSize; j++) {
        slots[j] = ScreenSlot(depth, keyBits);
        slots[j].enabled <== enabled[j];
        slots[j].key <== key[j];
        slots[j].salt <== salt[j];
        slots[j].blakeLeaf <== blakeLeaf[j];
        slots[j].lo <== lo[j];
        slots[j].hi <== hi[j];
        slots[j].gapRoot <== gapRoot;
        for (var i = 0; i < depth; i++) {
            slots[j].siblings[i] <== siblings[j][i];
            slots[j].pathBits[i] <== pathBits[j][i];
        }
        tree.leaves[j] <== slots[j].leaf;
    }
    batchRoot <== tree.root;
}
