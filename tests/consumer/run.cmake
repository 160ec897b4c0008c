# Installs the build tree into a scratch prefix, then configures, builds and runs the consumer
# project against it with find_package(unetcore). Invoked by CTest (see tests/CMakeLists.txt).
# With SEGMENT (the segment program) and IMAGE set, also runs the guide's example segment_png
# with the installed model and checks that it writes the same bytes as segment.
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "cmake --install failed (${rc})")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build -G Ninja
                        -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the consumer against the installed package failed (${rc})")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the consumer failed (${rc})")
endif()
execute_process(COMMAND ${WORK_DIR}/build/consumer RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "the consumer ran but computed a wrong result (${rc})")
endif()

if(SEGMENT AND IMAGE)
  set(model ${WORK_DIR}/prefix/share/unetcore/models/isbi2012-em.safetensors)
  if(NOT EXISTS ${model})
    message(FATAL_ERROR "the install did not ship the model: ${model}")
  endif()
  execute_process(COMMAND ${WORK_DIR}/build/segment_png ${model} ${IMAGE} ${WORK_DIR}/example.tif RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "segment_png failed (${rc})")
  endif()
  execute_process(COMMAND ${SEGMENT} --model ${model} --input ${IMAGE} --out ${WORK_DIR}/segment --device cpu
                  RESULT_VARIABLE rc OUTPUT_QUIET)
  if(rc)
    message(FATAL_ERROR "segment failed (${rc})")
  endif()
  get_filename_component(stem ${IMAGE} NAME_WE)
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${WORK_DIR}/example.tif ${WORK_DIR}/segment/${stem}.tif
                  RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "segment_png and segment wrote different probability maps")
  endif()
endif()
