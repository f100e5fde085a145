#!/usr/bin/env bash
# The peer for `gauntlet bench kernels`: ggml's own TQ2_0 / TQ1_0 GEMV (ggml_mul_mat,
# n = 1) on this machine, cold (rotating over >= 1 GiB of weight copies) and hot, with a
# persistent threadpool. ggml comes from the llama.cpp sources vendored in the PyPI
# sdist of llama-cpp-python (pinned by hash), built with -march=native; cmake comes
# from PyPI too. Not part of CI (it downloads ~50 MB and builds C++); run it by hand:
#
#     scripts/ggml_peer/run.sh [threads] [MxK]      # default: 2 6912x2560
#
# and compare with `gauntlet bench kernels --threads N --shape MxK` run right after.
set -euo pipefail
threads=${1:-2}
shape=${2:-6912x2560}
m=${shape%x*}
k=${shape#*x}
here=$(cd "$(dirname "$0")" && pwd)
work=${GGML_PEER_DIR:-${TMPDIR:-/tmp}/gauntlet-ggml-peer}
version=0.3.16
sha=34ed0f9bd9431af045bb63d9324ae620ad0536653740e9bb163a2e1fcb973be6
url=https://files.pythonhosted.org/packages/e4/b4/c8cd17629ced0b9644a71d399a91145aedef109c0333443bef015e45b704/llama_cpp_python-$version.tar.gz
mkdir -p "$work"
cd "$work"
if [ ! -x venv/bin/cmake ]; then
  python3 -m venv venv
  venv/bin/pip install --quiet --disable-pip-version-check cmake
fi
if [ ! -d "llama_cpp_python-$version" ]; then
  curl -sSfL -o sdist.tar.gz "$url"
  echo "$sha  sdist.tar.gz" | sha256sum -c --quiet
  tar xzf sdist.tar.gz
fi
ggml="$work/llama_cpp_python-$version/vendor/llama.cpp/ggml"
# The sdist omits this pkg-config template; ggml's CMakeLists only needs it to exist.
touch "$ggml/ggml.pc.in"
if [ ! -f build/src/libggml-cpu.a ]; then
  venv/bin/cmake -S "$ggml" -B build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DGGML_BUILD_TESTS=OFF -DGGML_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF \
    -DGGML_OPENMP=OFF >cmake.log 2>&1
  venv/bin/cmake --build build -j "$(nproc)" >build.log 2>&1
fi
cc -O2 -march=native -I"$ggml/include" "$here/ggml_bench.c" build/src/libggml.a \
  build/src/libggml-cpu.a build/src/libggml-base.a -lstdc++ -lm -lpthread -o ggml_bench
for type in tq2_0 tq1_0; do
  ./ggml_bench "$type" "$m" "$k" "$threads"
done
