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
