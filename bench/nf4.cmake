# NF4 dequantize (CPU reference) against memcpy of the same output bytes.
add_executable(nf4_dequant_bench ${CMAKE_CURRENT_LIST_DIR}/nf4_dequant_bench.cc)
target_link_libraries(nf4_dequant_bench PRIVATE lorad::kernels_ref)
