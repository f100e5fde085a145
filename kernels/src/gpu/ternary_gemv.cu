// Ternary GEMV/GEMM for TQ2_0 and I2_S, compiled at run time by NVRTC.
//
// One warp per (weight row, activation row). Each lane decodes 2 of a chunk's 64 code
// bytes (8 weights), the warp sums the chunk's int32 dot with shuffles (exact), and
// lane 0 applies the scales in chunk order with explicit round-to-nearest multiplies
// and adds (no FMA contraction), exactly as the CPU's shared combine does, so outputs
// are bit-equal to the scalar reference.

typedef unsigned char u8;
typedef signed char i8;

// IEEE half -> float, exact for every input (subnormals, inf, NaN).
__device__ float half_to_float(unsigned short h) {
    unsigned int sign = (h & 0x8000u) << 16;
    unsigned int exp = (h >> 10) & 0x1f;
    unsigned int man = h & 0x3ffu;
    unsigned int bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {
            int e = -1;
            do { e++; man <<= 1; } while ((man & 0x400u) == 0);
            bits = sign | ((unsigned int)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man ? 0x400000u : 0u) | (man << 13);  // NaNs quieted, as on the CPU
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    return __int_as_float((int)bits);
}

// format: 0 = TQ2_0 (66-byte blocks, shift 2g, f16 scale at +64), 1 = I2_S (64-byte
// chunks, shift 6 - 2g, tensor scale). k: row length; m: rows; dots: optional
// [n][m][chunks] int32 output for bit-exactness tests (null when not wanted).
extern "C" __global__ void ternary_gemm(
    const u8* __restrict__ w, const i8* __restrict__ x,
    const float* __restrict__ inv_scales, float* __restrict__ y, int* __restrict__ dots,
    int format, int m, int k, float tensor_scale)
{
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * (blockDim.x / 32) + (threadIdx.x >> 5);
    const int r = blockIdx.y;
    if (row >= m) return;
    const int chunks = (k + 255) / 256;
    const int stride = format == 0 ? 66 : 64;
    const long long row_bytes = format == 0 ? (long long)(k / 256) * 66 : (long long)k / 4;
    const u8* wr = w + (long long)row * row_bytes;
    const i8* xr = x + (long long)r * k;
    float acc = 0.0f;
    int total = 0;
    for (int c = 0; c < chunks; ++c) {
        const int weights = min(256, k - c * 256);
        const int bytes = weights / 4;
        const u8* p = wr + (long long)c * stride;
        int s = 0;
        for (int b = 2 * lane; b < 2 * lane + 2; ++b) {
            if (b < bytes) {
                const int byte = p[b];
                const int h = b >> 5, mm = b & 31;
                for (int g = 0; g < 4; ++g) {
                    const int shift = format == 0 ? 2 * g : 6 - 2 * g;
                    const int code = ((byte >> shift) & 3) - 1;
                    s += code * (int)xr[c * 256 + 128 * h + 32 * g + mm];
                }
            }
        }
        for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
        if (lane == 0) {
            if (dots) dots[((long long)r * m + row) * chunks + c] = s;
            if (format == 0) {
                const unsigned short bits = (unsigned short)(p[64] | (p[65] << 8));
                acc = __fadd_rn(acc, __fmul_rn(half_to_float(bits), (float)s));
            } else {
                total += s;
            }
        }
    }
    if (lane == 0) {
        const float out = format == 0
            ? __fmul_rn(acc, inv_scales[r])
            : __fmul_rn(__fmul_rn((float)total, tensor_scale), inv_scales[r]);
        y[(long long)r * m + row] = out;
    }
}
