# The benchmarks' models by name (tiny, llama-100m), shared by the
# training and serving benchmarks, and the training settings they share.
if(TARGET lorad::worker)
  add_library(lorad_bench_models STATIC
              ${CMAKE_CURRENT_LIST_DIR}/bench_models.cc)
  target_include_directories(lorad_bench_models
                             PUBLIC ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(lorad_bench_models PUBLIC lorad::worker)
endif()
