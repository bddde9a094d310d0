// One intra-op thread count for the whole process. LibTorch's OpenMP backend keeps the team size per
// thread (an OpenMP ICV, fixed on each thread at its first parallel loop), so at::set_num_threads on
// the JS thread does not reach the libuv worker threads that already ran work; OpenBLAS (pthreads
// build) keeps a pool of its own, sized from the CPU count. radkit's setNumThreads records the count
// here and sets OpenBLAS's pool; every native worker applies it before its work (PromiseWorker).
#pragma once

namespace radkit {

// Sets the count for all later work: this thread's OpenMP team, LibTorch's default for new threads,
// and OpenBLAS's pool (when the OpenBLAS in the process exports openblas_set_num_threads).
void setProcessThreads(int n);
// The count last set with setProcessThreads (0 = never set: LibTorch's own default applies).
int processThreads();
// Brings the calling thread's OpenMP team size to processThreads() (cheap when it already is).
void applyProcessThreads();
// OpenBLAS's pool size, or -1 when no OpenBLAS with openblas_get_num_threads is loaded.
int openblasThreads();

}  // namespace radkit
