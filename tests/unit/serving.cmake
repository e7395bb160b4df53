# The server's serving pieces: batch input format.
foreach(name batch_input)
  lorad_add_test(${name}_test SRCS ${CMAKE_CURRENT_LIST_DIR}/${name}_test.cc
    LIBS lorad::server_internals lorad::model nlohmann_json::nlohmann_json)
endforeach()
