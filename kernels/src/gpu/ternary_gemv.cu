// Ternary GEMV/GEMM for TQ2_0 and I2_S, compiled at run time by NVRTC.
//
// One warp per (weight row, activation row), four chunks of the row per step: lanes
// 8j..8j+8 take chunk j of the step, 8 code bytes (32 weights) each. Eight lanes sum
// a chunk's int32 dot with three shuffles (exact), then lane 0 collects the four
// chunk dots and applies the scales in chunk order with explicit round-to-nearest
// multiplies and adds (no FMA contraction), exactly as the CPU's shared combine does,
// so outputs are bit-equal to the scalar reference. A 2560-weight row takes three
// steps, so a warp waits on memory three times, not ten.

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
    const int group = lane >> 3, part = lane & 7;
    for (int step = 0; step < chunks; step += 4) {
        const int c = step + group;
        int s = 0;
        if (c < chunks) {
            const int weights = min(256, k - c * 256);
            const int bytes = weights / 4;
            const u8* p = wr + (long long)c * stride;
            for (int b = 8 * part; b < 8 * part + 8; ++b) {
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
        }
        // Every lane of the warp takes part in every shuffle.
        for (int off = 4; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
        for (int j = 0; j < 4; ++j) {
            const int dot = __shfl_sync(0xffffffffu, s, 8 * j);
            const int cj = step + j;
            if (lane == 0 && cj < chunks) {
                if (dots) dots[((long long)r * m + row) * chunks + cj] = dot;
                if (format == 0) {
                    const u8* p = wr + (long long)cj * stride;
                    const unsigned short bits = (unsigned short)(p[64] | (p[65] << 8));
                    acc = __fadd_rn(acc, __fmul_rn(half_to_float(bits), (float)dot));
                } else {
                    total += dot;
                }
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
