// The Python module `landmark_kernels._C`: importing it runs the static op registrations.
// Only setup.py builds this file; the CMake library for libtorch users has no Python in it.
#include <Python.h>
#include <torch/version.h>

#ifdef LK_WITH_CUDA
#include <cuda_runtime_api.h>
#define LK_CUDA_VERSION CUDART_VERSION
#else
#define LK_CUDA_VERSION 0
#endif

#define LK_STR2(x) #x
#define LK_STR(x) LK_STR2(x)
// The torch whose headers this was compiled against: its ABI is what the kernels link to.
#define LK_TORCH_VERSION \
  LK_STR(TORCH_VERSION_MAJOR) "." LK_STR(TORCH_VERSION_MINOR) "." LK_STR(TORCH_VERSION_PATCH)

extern "C" PyObject* PyInit__C(void) {
  static PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C",
                                   "landmark_kernels native ops (registered in torch.ops)", -1,
                                   nullptr};
  PyObject* module = PyModule_Create(&module_def);
  // CUDA runtime version the CUDA kernels were compiled against (e.g. 13000), 0 if none.
  if (module != nullptr &&
      (PyModule_AddIntConstant(module, "cuda_version", LK_CUDA_VERSION) < 0 ||
       PyModule_AddStringConstant(module, "torch_version", LK_TORCH_VERSION) < 0)) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
