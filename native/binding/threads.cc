// See threads.h.
#include "threads.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <atomic>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace radkit {
namespace {

std::atomic<int> gThreads{0};

template <typename Fn>
Fn openblasSymbol(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
}

}  // namespace

void setProcessThreads(int n) {
  gThreads.store(n);
  at::set_num_threads(n);
  using SetFn = void (*)(int);
  static SetFn setBlas = openblasSymbol<SetFn>("openblas_set_num_threads");
  if (setBlas) setBlas(n);
}

int processThreads() { return gThreads.load(); }

void applyProcessThreads() {
  const int n = gThreads.load();
  if (n <= 0) return;
#ifdef _OPENMP
  if (omp_get_max_threads() == n) return;
#else
  if (at::get_num_threads() == n) return;
#endif
  at::set_num_threads(n);
}

int openblasThreads() {
  using GetFn = int (*)();
  static GetFn getBlas = openblasSymbol<GetFn>("openblas_get_num_threads");
  return getBlas ? getBlas() : -1;
}

}  // namespace radkit
