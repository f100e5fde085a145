// ggml's own TQ1_0 / TQ2_0 GEMV (ggml_mul_mat, n = 1) on this machine, cold (rotating
// over >= 1 GiB of weight copies) and hot, with a persistent threadpool.
#include "ggml.h"
#include "ggml-cpu.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  enum ggml_type type = (argc>1 && !strcmp(argv[1],"tq1_0")) ? GGML_TYPE_TQ1_0 : GGML_TYPE_TQ2_0;
  int M = argc>2 ? atoi(argv[2]) : 6912, K = argc>3 ? atoi(argv[3]) : 2560, threads = argc>4 ? atoi(argv[4]) : 2;
  ggml_cpu_init();
  size_t wbytes = ggml_row_size(type, K) * M;
  float *src = malloc(sizeof(float)*(size_t)M*K);
  unsigned s = 12345; for (size_t i=0;i<(size_t)M*K;i++){ s = s*1103515245u+12345u; src[i] = ((int)((s>>16)%3)-1)*0.05f; }
  size_t copies = ((1u<<30) + wbytes - 1)/wbytes; if (copies<2) copies=2;
  unsigned char *w = malloc(wbytes*copies);
  ggml_quantize_chunk(type, src, w, 0, M, K, NULL);
  for (size_t c=1;c<copies;c++) memcpy(w + c*wbytes, w, wbytes);
  struct ggml_init_params p = { 16*1024*1024, NULL, true };
  struct ggml_context *ctx = ggml_init(p);
  struct ggml_tensor *W = ggml_new_tensor_2d(ctx, type, K, M), *X = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, K, 1);
  struct ggml_tensor *Y = ggml_mul_mat(ctx, W, X);
  struct ggml_cgraph *gf = ggml_new_graph(ctx); ggml_build_forward_expand(gf, Y);
  X->data = malloc(sizeof(float)*K); for (int i=0;i<K;i++) ((float*)X->data)[i] = (i%7)*0.1f-0.3f;
  Y->data = malloc(sizeof(float)*M);
  struct ggml_threadpool_params tpp = ggml_threadpool_params_default(threads);
  struct ggml_threadpool *tp = ggml_threadpool_new(&tpp);
  struct ggml_cplan plan = ggml_graph_plan(gf, threads, tp); plan.work_data = malloc(plan.work_size + 64);
  double cold[200], hot[200]; size_t next = 0;
  for (int r=0;r<5;r++){ W->data = w + (next++ % copies)*wbytes; ggml_graph_compute(gf,&plan); }
  for (int r=0;r<200;r++){ W->data = w + (next++ % copies)*wbytes; double t=now(); ggml_graph_compute(gf,&plan); cold[r]=now()-t; }
  W->data = w;
  for (int r=0;r<200;r++){ double t=now(); ggml_graph_compute(gf,&plan); hot[r]=now()-t; }
  qsort(cold,200,sizeof(double),cmp); qsort(hot,200,sizeof(double),cmp);
  printf("ggml %s %dx%d threads=%d: cold median %.1f us (%.2f GB/s), hot median %.1f us\n", ggml_type_name(type), M, K, threads, cold[100]*1e6, wbytes/cold[100]/1e9, hot[100]*1e6);
  return 0;
}
