# Training throughput and memory (lorad's side; bench/train_bench.py runs
# the HF transformers + PEFT peer beside it).
if(TARGET lorad::worker)
  add_executable(train_bench ${CMAKE_CURRENT_LIST_DIR}/train_bench.cc)
  target_link_libraries(train_bench PRIVATE lorad_bench_models lorad::worker
                        absl::flags absl::flags_parse absl::flags_usage
                        nlohmann_json::nlohmann_json)
  target_precompile_headers(train_bench REUSE_FROM lorad_worker_lib)
endif()

# Many jobs on one base: N jobs one after another vs at once, fused.
if(TARGET lorad::worker)
  add_executable(fused_train_bench
    ${CMAKE_CURRENT_LIST_DIR}/fused_train_bench.cc)
  target_link_libraries(fused_train_bench PRIVATE lorad_bench_models
                        lorad::worker lorad::common absl::flags
                        absl::flags_parse absl::flags_usage
                        nlohmann_json::nlohmann_json)
  target_precompile_headers(fused_train_bench REUSE_FROM lorad_worker_lib)
endif()
