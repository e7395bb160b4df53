# Kernel CPU references against independent naive computations; with a CUDA
# toolkit each test also checks the CUDA kernels against their references
# on the GPU (SKIPPED on a machine without one).
foreach(t kernels_nf4_gemv_test kernels_lora_test kernels_rmsnorm_test)
  lorad_add_test(${t} SRCS ${CMAKE_CURRENT_LIST_DIR}/${t}.cc
    LIBS lorad::kernels_ref LABELS kernels)
  if(TARGET lorad::kernels_cuda)
    target_link_libraries(${t} PRIVATE lorad::kernels_cuda)
    target_compile_definitions(${t} PRIVATE LORAD_TEST_KERNELS_CUDA=1)
  endif()
endforeach()

# The LibTorch bridge: checks, CPU path, and (with a GPU) CUDA vs CPU.
if(TARGET lorad::cuda_bridge)
  get_property(LORAD_BRIDGE_HAS_CUDA GLOBAL PROPERTY LORAD_BRIDGE_HAS_CUDA)
  lorad_add_test(kernels_bridge_test
    SRCS ${CMAKE_CURRENT_LIST_DIR}/kernels_bridge_test.cc
    LIBS lorad::cuda_bridge lorad::kernels_ref LABELS kernels)
  if(LORAD_BRIDGE_HAS_CUDA)
    target_compile_definitions(kernels_bridge_test PRIVATE LORAD_EXPECT_BRIDGE_CUDA=1)
  else()
    target_compile_definitions(kernels_bridge_test PRIVATE LORAD_EXPECT_BRIDGE_CUDA=0)
  endif()
endif()

# The GPU benchmark's HF peer scripts (bench/gpu/), run tiny on the CPU so
# they are known to work before a GPU host runs them at full size.
if(EXISTS ${LORAD_PYTHON})
  add_test(NAME gpu_bench_scripts_test
    COMMAND bash ${PROJECT_SOURCE_DIR}/bench/gpu/check_cpu.sh ${LORAD_PYTHON})
  set_tests_properties(gpu_bench_scripts_test PROPERTIES
    LABELS bench_scripts TIMEOUT 300)
endif()

# The worker's NF4 weight through the bridge kernel (GPU) vs its LibTorch path.
if(TARGET lorad::worker)
  lorad_add_test(kernels_nf4_weight_test
    SRCS ${CMAKE_CURRENT_LIST_DIR}/kernels_nf4_weight_test.cc
    LIBS lorad::worker lorad::cuda_bridge LABELS kernels)
  target_precompile_headers(kernels_nf4_weight_test REUSE_FROM lorad_worker_lib)
endif()

# The CUDA sources run on a host emulator (kernels_emu.h): indexing, shared
# memory, barriers and shuffles checked without a GPU. Needs only the CUDA
# headers (cuda_bf16.h).
if(LORAD_HAVE_CUDA)
  find_package(CUDAToolkit REQUIRED)
  foreach(op nf4_dequantize nf4_gemv lora rmsnorm)
    lorad_add_test(kernels_emu_${op}_test
      SRCS ${CMAKE_CURRENT_LIST_DIR}/kernels_emu_${op}_test.cc
      LIBS lorad::kernels_ref LABELS kernels)
    target_include_directories(kernels_emu_${op}_test PRIVATE
      ${CUDAToolkit_INCLUDE_DIRS})
    # nvcc tolerates the kernels' vector loads through cast pointers; so
    # must the host compiler here.
    target_compile_options(kernels_emu_${op}_test PRIVATE -fno-strict-aliasing)
  endforeach()
endif()
