# Mask() time of the JSON constraint (model/json_constraint.h) per token.
add_executable(json_constraint_bench
  ${CMAKE_CURRENT_LIST_DIR}/json_constraint_bench.cc)
target_link_libraries(json_constraint_bench PRIVATE lorad::model)
