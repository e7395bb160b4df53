# CUDA kernels against the device's copy bandwidth (bench/kernels_bench.cc);
# built with the CUDA kernels, prints a "skipped" line without a GPU.
if(TARGET lorad::kernels_cuda)
  add_executable(kernels_bench ${CMAKE_CURRENT_LIST_DIR}/kernels_bench.cc)
  target_link_libraries(kernels_bench PRIVATE lorad::kernels_cuda)
endif()
