# Fuzz targets for every parser of outside input. In the normal build each
# links a replay driver (replay_main.cc) and CTest runs it over the seed
# corpus plus deterministic mutations. For coverage-guided fuzzing, build
# with clang and libFuzzer (see tests/fuzz/README.md).
option(LORAD_FUZZ "Link the fuzz targets with libFuzzer (clang only)" OFF)

function(lorad_add_fuzz name)
  cmake_parse_arguments(F "" "CORPUS" "LIBS" ${ARGN})
  add_executable(${name} ${CMAKE_CURRENT_LIST_DIR}/${name}.cc)
  target_link_libraries(${name} PRIVATE ${F_LIBS})
  target_compile_definitions(${name} PRIVATE
    LORAD_GOLDEN_DIR="${LORAD_GOLDEN_DIR}")
  if(LORAD_FUZZ)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address)
  else()
    target_sources(${name} PRIVATE ${CMAKE_CURRENT_LIST_DIR}/replay_main.cc)
    add_test(NAME ${name} COMMAND ${name} --mutations=20000
      ${CMAKE_CURRENT_LIST_DIR}/corpus/${F_CORPUS})
    set_tests_properties(${name} PROPERTIES LABELS fuzz)
  endif()
endfunction()

lorad_add_fuzz(dataset_fuzz CORPUS dataset LIBS lorad::common)
lorad_add_fuzz(model_config_fuzz CORPUS model_config LIBS lorad::model)
lorad_add_fuzz(safetensors_fuzz CORPUS safetensors LIBS lorad::model)
lorad_add_fuzz(tokenizer_fuzz CORPUS tokenizer LIBS lorad::model)
