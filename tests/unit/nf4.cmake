lorad_add_test(nf4_test SRCS ${CMAKE_CURRENT_LIST_DIR}/nf4_test.cc
  LIBS lorad::kernels_ref lorad::model)
# With a CUDA toolkit, nf4_test also checks the CUDA kernel against the CPU
# reference; it reports SKIPPED on a machine without a GPU.
if(TARGET lorad::kernels_cuda)
  find_package(CUDAToolkit REQUIRED)
  target_link_libraries(nf4_test PRIVATE lorad::kernels_cuda CUDA::cudart)
  target_compile_definitions(nf4_test PRIVATE LORAD_TEST_NF4_CUDA=1)
endif()
