// Runs the CUDA source `src/gpu/ternary_gemv.cu` on the CPU: one OS thread per warp
// lane, a barrier per `__shfl_xor_sync` / `__shfl_sync`, and the CUDA intrinsics the kernel uses
// mapped to their IEEE equivalents (built with -ffp-contract=off, so `__fmul_rn`
// and `__fadd_rn` stay single roundings). The kernel's integer and float arithmetic
// is then exactly what a GPU computes, which lets the bit-exactness test against the
// scalar reference run on machines without a GPU (`tests/gpu_source_on_cpu.rs`).
//
// Input file (little endian): i32 format, m, k, n; f32 tensor_scale; u64 weight byte
// count; the weight bytes (rows back to back, as the GPU backend uploads them);
// n·k int8 activations; n f32 inverse scales.
// Output file: m·n f32 outputs, then n·m·chunks int32 chunk dots.

#include <algorithm>
#include <barrier>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

struct Dim3 {
    unsigned x, y, z;
};
static thread_local Dim3 threadIdx, blockIdx;
static Dim3 blockDim{32, 1, 1};

#define __global__
#define __device__ static inline
#define __restrict__ __restrict

static inline float __int_as_float(int i) {
    float f;
    std::memcpy(&f, &i, sizeof f);
    return f;
}
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
using std::min;

static std::barrier<>* lanes_meet;
static int shuffle_slots[32];

static inline int __shfl_xor_sync(unsigned /*mask*/, int value, int offset) {
    const unsigned lane = threadIdx.x & 31;
    shuffle_slots[lane] = value;
    lanes_meet->arrive_and_wait();
    const int got = shuffle_slots[lane ^ unsigned(offset)];
    lanes_meet->arrive_and_wait();
    return got;
}

static inline int __shfl_sync(unsigned /*mask*/, int value, int src_lane) {
    const unsigned lane = threadIdx.x & 31;
    shuffle_slots[lane] = value;
    lanes_meet->arrive_and_wait();
    const int got = shuffle_slots[unsigned(src_lane) & 31];
    lanes_meet->arrive_and_wait();
    return got;
}

#include "../../src/gpu/ternary_gemv.cu"

template <class T>
static bool read_into(FILE* f, T* out, size_t count) {
    return std::fread(out, sizeof(T), count, f) == count;
}

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s INPUT OUTPUT\n", argv[0]);
        return 2;
    }
    FILE* in = std::fopen(argv[1], "rb");
    if (!in) {
        std::perror(argv[1]);
        return 2;
    }
    int32_t hdr[4];
    float tensor_scale;
    uint64_t wbytes;
    if (!read_into(in, hdr, 4) || !read_into(in, &tensor_scale, 1) || !read_into(in, &wbytes, 1)) {
        std::fprintf(stderr, "truncated header\n");
        return 2;
    }
    const int format = hdr[0], m = hdr[1], k = hdr[2], n = hdr[3];
    if (m <= 0 || k <= 0 || n <= 0 || m > (1 << 16) || k > (1 << 16) || n > 64 || wbytes > (1u << 28)) {
        std::fprintf(stderr, "implausible shape m=%d k=%d n=%d bytes=%llu\n", m, k, n,
                     (unsigned long long)wbytes);
        return 2;
    }
    std::vector<uint8_t> w(wbytes);
    std::vector<int8_t> x(size_t(n) * k);
    std::vector<float> inv(n);
    if (!read_into(in, w.data(), w.size()) || !read_into(in, x.data(), x.size()) ||
        !read_into(in, inv.data(), inv.size())) {
        std::fprintf(stderr, "truncated input\n");
        return 2;
    }
    std::fclose(in);

    const int chunks = (k + 255) / 256;
    std::vector<float> y(size_t(m) * n, -1.0f);
    std::vector<int> dots(size_t(n) * m * chunks, 0x7fffffff);
    std::barrier<> meet(32);
    lanes_meet = &meet;
    // One warp per (row, activation row), as the launch grid has it; the 32 lanes run
    // every warp in the same order, meeting at each shuffle.
    std::vector<std::thread> lanes;
    for (unsigned lane = 0; lane < 32; ++lane) {
        lanes.emplace_back([&, lane] {
            threadIdx = Dim3{lane, 0, 0};
            for (int r = 0; r < n; ++r) {
                for (int row = 0; row < m; ++row) {
                    blockIdx = Dim3{unsigned(row), unsigned(r), 0};
                    ternary_gemm(w.data(), x.data(), inv.data(), y.data(), dots.data(), format, m, k,
                                 tensor_scale);
                }
            }
        });
    }
    for (auto& t : lanes) t.join();

    FILE* out = std::fopen(argv[2], "wb");
    if (!out || std::fwrite(y.data(), sizeof(float), y.size(), out) != y.size() ||
        std::fwrite(dots.data(), sizeof(int), dots.size(), out) != dots.size() || std::fclose(out) != 0) {
        std::perror(argv[2]);
        return 2;
    }
    return 0;
}
