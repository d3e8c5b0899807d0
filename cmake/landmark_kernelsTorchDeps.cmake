# Included before find_package(Torch), here and by landmark_kernelsConfig.cmake (installed).
# A CUDA build of torch makes find_package(Torch) look for a CUDA toolkit and for nvrtc, even
# for a CPU-only library. Its search takes the folder above the first `nvcc` on PATH, wrong when
# that nvcc is a wrapper script, and nvrtc is not in every toolkit (the pip wheels next to torch
# carry it). Point both at what is there, unless the caller set them (-DCUDA_TOOLKIT_ROOT_DIR,
# -DCUDA_nvrtc_LIBRARY) or CUDA_HOME/CUDA_PATH.
if(NOT CUDA_TOOLKIT_ROOT_DIR)
  if(DEFINED ENV{CUDA_HOME})
    set(_lk_cuda_root "$ENV{CUDA_HOME}")
  elseif(DEFINED ENV{CUDA_PATH})
    set(_lk_cuda_root "$ENV{CUDA_PATH}")
  else()
    find_program(LK_NVCC nvcc)
    if(LK_NVCC)
      # nvcc's dry run prints `#$ TOP=<toolkit>/bin/..`, also when run through a wrapper.
      execute_process(COMMAND "${LK_NVCC}" -dryrun -E -x cu /dev/null
                      OUTPUT_VARIABLE _lk_out ERROR_VARIABLE _lk_err)
      if("${_lk_out}${_lk_err}" MATCHES "#\\$ TOP=([^\r\n]*)")
        get_filename_component(_lk_cuda_root "${CMAKE_MATCH_1}" REALPATH)
      endif()
    elseif(EXISTS /usr/local/cuda/bin/nvcc)
      set(_lk_cuda_root /usr/local/cuda)
    endif()
  endif()
  if(_lk_cuda_root)
    set(CUDA_TOOLKIT_ROOT_DIR "${_lk_cuda_root}" CACHE PATH "CUDA toolkit for torch's CMake config")
  endif()
endif()
if(CUDA_TOOLKIT_ROOT_DIR)
  set(CUDAToolkit_ROOT "${CUDA_TOOLKIT_ROOT_DIR}")
  if(NOT CMAKE_CUDA_COMPILER)
    set(CMAKE_CUDA_COMPILER "${CUDA_TOOLKIT_ROOT_DIR}/bin/nvcc")
  endif()
  # torch's CMake files live in <site-packages>/torch/share/cmake/Torch; the nvidia-* wheels in
  # <site-packages>/nvidia/<package>/lib.
  find_path(LK_TORCH_CMAKE_DIR TorchConfig.cmake HINTS "${Torch_DIR}" PATH_SUFFIXES Torch
            share/cmake/Torch)
  set(_lk_hints "${CUDA_TOOLKIT_ROOT_DIR}/lib64" "${CUDA_TOOLKIT_ROOT_DIR}/lib")
  if(LK_TORCH_CMAKE_DIR)
    file(GLOB _lk_wheel_libs "${LK_TORCH_CMAKE_DIR}/../../../../nvidia/*/lib")
    list(APPEND _lk_hints ${_lk_wheel_libs})
    # Their headers too (cusparse.h, cublas_v2.h, ... that ATen/cuda includes), as in setup.py.
    file(GLOB LK_CUDA_WHEEL_INCLUDES "${LK_TORCH_CMAKE_DIR}/../../../../nvidia/*/include")
  endif()
  find_library(CUDA_nvrtc_LIBRARY NAMES nvrtc libnvrtc.so.13 libnvrtc.so.12 HINTS ${_lk_hints})
else()
  message(STATUS "landmark_kernels: no CUDA toolkit found (fine with a CPU build of torch; for a "
                 "CUDA build set CUDA_HOME or -DCUDA_TOOLKIT_ROOT_DIR)")
endif()
