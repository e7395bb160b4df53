# The one PEFT adapter rule set (lorad::model, torch-free): the parser and
# the check of an adapter directory against a base model.
foreach(name peft_adapter adapter_check)
  lorad_add_test(${name}_test SRCS ${CMAKE_CURRENT_LIST_DIR}/${name}_test.cc
    LIBS lorad::model nlohmann_json::nlohmann_json)
endforeach()
