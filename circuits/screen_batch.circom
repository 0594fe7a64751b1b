pragma circom 2.1.6;

// cap-proof.v3 sanctions screening of one batch of committed suppliers (docs/formats/proof_v3.md,
// docs/adr/0011-zk-screening-scheme.md).
//
// Public:  outputs batchRoot, maxTier, highRiskCount; inputs gapRoot, activeCount, riskPacked[riskWords].
// Private: per slot j < batchSize: enabled[j], key[j] (key248), salt[j], blakeLeaf[j] (BLAKE3 supplier leaf mod p),
//          tier[j] and jurisdiction[j] (16-bit code: 256 * first letter + second letter, 0 for none),
//          the sanctions gap (lo, hi) the key falls into and its Merkle path in the gap tree.
//
// Statement:
//   * enabled is a prefix of ones whose length is activeCount (so 0 <= activeCount <= batchSize);
//   * slot leaf j = enabled[j] * Poseidon(key, salt, blakeLeaf, tier * 2^16 + jurisdiction): disabled slots
//     are the 0 leaf; tier and jurisdiction are 16-bit, so the packing is injective;
//   * batchRoot = binary Poseidon tree over the batchSize slot leaves;
//   * every enabled key satisfies lo < key < hi for a gap leaf Poseidon(lo, hi) at depth `depth` under gapRoot;
//   * maxTier = the largest tier of an enabled slot (0 for an empty batch);
//   * highRiskCount = the number of enabled slots whose jurisdiction is one of the riskCodes 16-bit codes
//     packed 15 per word (little-endian) into the public riskPacked words. The verifier packs them itself
//     from the HIGH jurisdictions of the trusted lists, padded with 0xFFFF (no jurisdiction's code).
//
// Soundness notes (review these when changing anything):
//   * The gap leaf's lo, hi come from the honest gap tree, so 0 <= lo < hi <= 2^keyBits < p / 4. The two
//     keyBits-bit range checks on key - lo - 1 and hi - key - 1 then sum to hi - lo - 2 < 2^(keyBits+1) without
//     wrap-around mod p, hence lo < key < hi as integers. No separate range check on key is needed.
//   * Padding leaves of the gap tree are 0, which has no known Poseidon preimage; the fixed depth rules out using
//     an inner node as a leaf.
//   * Path direction bits are constrained boolean; everything that feeds a hash is assigned with <== only.
//   * runningMax is 0 or some tierOut, all below 2^16 (tier is range-checked, tierOut is 0 or tier), so
//     LessThan(16) compares them correctly and its output is a constrained bit: maxTier is the true maximum.
//   * highRisk is enabled * IsZero(product): IsZero's out is 1 exactly when its input is 0 (both constraints),
//     and the product is 0 exactly when jurisdiction equals some risk code (the field has no zero divisors).
//     A disabled slot counts 0 whatever its (range-checked) tier and jurisdiction.

include "poseidon.circom";
include "bitify.circom";
include "comparators.circom";

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

// One slot: its salted leaf (0 when disabled); when enabled, the key's strict inclusion in a listed gap, its
// tier and whether its jurisdiction is a high-risk one.
template ScreenSlot(depth, keyBits, riskCodes) {
    signal input enabled;
    signal input key;
    signal input salt;
    signal input blakeLeaf;
    signal input tier;
    signal input jurisdiction;
    signal input lo;
    signal input hi;
    signal input siblings[depth];
    signal input pathBits[depth];
    signal input gapRoot;
    signal input risk[riskCodes];
    signal output leaf;
    signal output tierOut;
    signal output highRisk;

    component tierBits = Num2Bits(16);
    tierBits.in <== tier;
    component jurisdictionBits = Num2Bits(16);
    jurisdictionBits.in <== jurisdiction;

    component leafHash = Poseidon(4);
    leafHash.inputs[0] <== key;
    leafHash.inputs[1] <== salt;
    leafHash.inputs[2] <== blakeLeaf;
    leafHash.inputs[3] <== tier * 65536 + jurisdiction;
    leaf <== enabled * leafHash.out;
    tierOut <== enabled * tier;

    // jurisdiction is high-risk iff the product of its differences to every risk code is 0.
    signal product[riskCodes];
    product[0] <== jurisdiction - risk[0];
    for (var k = 1; k < riskCodes; k++) {
        product[k] <== product[k - 1] * (jurisdiction - risk[k]);
    }
    component listed = IsZero();
    listed.in <== product[riskCodes - 1];
    highRisk <== enabled * listed.out;

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

template ScreenBatch(batchSize, depth, keyBits, riskWords) {
    var levels = ceilLog2(batchSize);
    var riskCodes = riskWords * 15;
    assert(batchSize == 1 << levels);
    assert(keyBits <= 250);

    signal input gapRoot;
    signal input activeCount;
    signal input riskPacked[riskWords];
    signal output batchRoot;
    signal output maxTier;
    signal output highRiskCount;

    signal input enabled[batchSize];
    signal input key[batchSize];
    signal input salt[batchSize];
    signal input blakeLeaf[batchSize];
    signal input tier[batchSize];
    signal input jurisdiction[batchSize];
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

    // The risk codes: each word is exactly 240 bits, so its 15 16-bit codes are unique.
    component words[riskWords];
    signal risk[riskCodes];
    for (var w = 0; w < riskWords; w++) {
        words[w] = Num2Bits(240);
        words[w].in <== riskPacked[w];
        for (var c = 0; c < 15; c++) {
            var code = 0;
            for (var b = 0; b < 16; b++) {
                code += words[w].out[16 * c + b] * (1 << b);
            }
            risk[15 * w + c] <== code;
        }
    }

    component slots[batchSize];
    component tree = SubtreeRoot(levels);
    component above[batchSize];
    signal runningMax[batchSize + 1];
    runningMax[0] <== 0;
    var highRisk = 0;
    for (var j = 0; j < batchSize; j++) {
        slots[j] = ScreenSlot(depth, keyBits, riskCodes);
        slots[j].enabled <== enabled[j];
        slots[j].key <== key[j];
        slots[j].salt <== salt[j];
        slots[j].blakeLeaf <== blakeLeaf[j];
        slots[j].tier <== tier[j];
        slots[j].jurisdiction <== jurisdiction[j];
        for (var k = 0; k < riskCodes; k++) {
            slots[j].risk[k] <== risk[k];
        }
        slots[j].lo <== lo[j];
        slots[j].hi <== hi[j];
        slots[j].gapRoot <== gapRoot;
        for (var i = 0; i < depth; i++) {
            slots[j].siblings[i] <== siblings[j][i];
            slots[j].pathBits[i] <== pathBits[j][i];
        }
        tree.leaves[j] <== slots[j].leaf;
        // Both operands are below 2^16 (tier is range-checked), as LessThan(16) requires.
        above[j] = LessThan(16);
        above[j].in[0] <== runningMax[j];
        above[j].in[1] <== slots[j].tierOut;
        runningMax[j + 1] <== runningMax[j] + above[j].out * (slots[j].tierOut - runningMax[j]);
        highRisk += slots[j].highRisk;
    }
    batchRoot <== tree.root;
    maxTier <== runningMax[batchSize];
    highRiskCount <== highRisk;
}
