# Training throughput and memory (lorad's side; bench/train_bench.py runs
# the HF transformers + PEFT peer beside it).
if(TARGET lorad::worker)
  add_executable(train_bench ${CMAKE_CURRENT_LIST_DIR}/train_bench.cc)
  target_link_libraries(train_bench PRIVATE lorad_bench_models lorad::worker
                        absl::flags absl::flags_parse absl::flags_usage
                        nlohmann_json::nlohmann_json)
  target_precompile_headers(train_bench REUSE_FROM lorad_worker_lib)
endif()
