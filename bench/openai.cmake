# The OpenAI-compatible API against gRPC Generate under the same load, and
# JSON mode against unconstrained decoding.
if(TARGET lorad_it_support AND TARGET lorad-worker)
  add_executable(openai_bench ${CMAKE_CURRENT_LIST_DIR}/openai_bench.cc)
  target_include_directories(openai_bench PRIVATE ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(openai_bench PRIVATE lorad_it_support Boost::headers
                        absl::flags absl::flags_parse
                        nlohmann_json::nlohmann_json)
  add_dependencies(openai_bench lorad lorad-worker)
endif()
