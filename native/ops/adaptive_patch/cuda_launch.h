// Raw-pointer CUDA launchers of adaptivePatchSample (plain CUDA C++, no ATen: see cuda.cu).
// dtype: 0 float32, 1 float64, 2 float16, 3 bfloat16. Tensors are contiguous; features NCHW.
// Each launcher returns the cudaError_t of the launch as an int (0 = success).
#pragma once

namespace radkit {
namespace apsample_cuda {

int forward(int dtype, const void* feat, const void* boxes, void* out, long long B, long long C, long long H,
            long long W, long long P, int m, void* stream);
// gboxes has the dtype of the boxes; one block per box reduces its m*m points (no atomics).
int backwardBoxes(int dtype, const void* gout, const void* feat, const void* boxes, void* gboxes, long long B,
                  long long C, long long H, long long W, long long P, int m, void* stream);
// gfeat accumulates in float (float32/16/bf16 inputs) or double (float64), zero-initialised by the caller.
int backwardFeatures(int dtype, const void* gout, const void* boxes, void* gfeat, long long B, long long C,
                     long long H, long long W, long long P, int m, void* stream);

}  // namespace apsample_cuda
}  // namespace radkit
