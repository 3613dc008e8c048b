# SPDX-License-Identifier: BSD-3-Clause
# cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... -DQMLCHECK=... -DCXX=... -P installcheck.cmake
# Installs the build into a scratch prefix, then uses it as a user would: `import IpmbQt` with
# QML_IMPORT_PATH only, an example configured and built on its own with find_package(IpmbQt), and
# a one-file program built with `c++ $(pkg-config --cflags --libs ipmbqt)`.
set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})

function(run)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
    endif()
    set(output "${out}${err}" PARENT_SCOPE)
endfunction()

run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
file(GLOB_RECURSE qmldirs ${prefix}/qmldir)
list(FILTER qmldirs INCLUDE REGEX "/IpmbQt/qmldir$")
if(NOT qmldirs)
    message(FATAL_ERROR "no IpmbQt/qmldir installed under ${prefix}")
endif()
list(GET qmldirs 0 qmldir)
get_filename_component(module_dir ${qmldir} DIRECTORY)
get_filename_component(import_dir ${module_dir} DIRECTORY)
message(STATUS "installed QML module: ${module_dir}")

string(RANDOM LENGTH 12 suffix)
run(${CMAKE_COMMAND} -E env QML_IMPORT_PATH=${import_dir} QT_QPA_PLATFORM=offscreen
    ${QMLCHECK} ${SOURCE_DIR}/tests/auto/install/installed.qml ${suffix})
message(STATUS "import IpmbQt from the prefix: ${output}")

# An example with the QML module's C++ library, built alone against the prefix.
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples/shared-frames -B ${WORK_DIR}/example -G Ninja
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${prefix}
    "-DCMAKE_CXX_FLAGS=${EXAMPLE_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${EXAMPLE_FLAGS}")
run(${CMAKE_COMMAND} --build ${WORK_DIR}/example -j2)
run(${CMAKE_COMMAND} -E env QT_QPA_PLATFORM=offscreen ${WORK_DIR}/example/shared-frames-producer --help)
message(STATUS "examples/shared-frames built alone against ${prefix}")

# Non-CMake users: one file, the compiler and pkg-config, with PKG_CONFIG_PATH into the prefix.
file(GLOB_RECURSE pcfiles ${prefix}/ipmbqt.pc)
if(NOT pcfiles)
    message(FATAL_ERROR "no ipmbqt.pc installed under ${prefix}")
endif()
list(GET pcfiles 0 pcfile)
get_filename_component(pcdir ${pcfile} DIRECTORY)
get_filename_component(libdir ${pcdir} DIRECTORY)
foreach(file ${libdir}/libIpmbQt.so ${libdir}/libIpmbQt.so.0 ${prefix}/include/IpmbQt/IpmbEndpoint)
    if(NOT EXISTS ${file})
        message(FATAL_ERROR "not installed: ${file}")
    endif()
endforeach()
find_program(PKG_CONFIG NAMES pkg-config pkgconf REQUIRED)
set(ENV{PKG_CONFIG_PATH} ${pcdir})
run(${PKG_CONFIG} --cflags --libs ipmbqt)
string(STRIP "${output}" pkgconfig_flags)
message(STATUS "pkg-config --cflags --libs ipmbqt: ${pkgconfig_flags}")
separate_arguments(pkgconfig_flags UNIX_COMMAND "${pkgconfig_flags}")
separate_arguments(example_flags UNIX_COMMAND "${EXAMPLE_FLAGS}")
run(${CXX} -o ${WORK_DIR}/pkgconfig_main ${SOURCE_DIR}/tests/auto/install/pkgconfig_main.cpp
    ${pkgconfig_flags} ${example_flags})
string(RANDOM LENGTH 12 suffix)
run(${CMAKE_COMMAND} -E env LD_LIBRARY_PATH=${libdir} ${WORK_DIR}/pkgconfig_main ipmbqt.installcheck.pc.${suffix})
if(NOT output MATCHES "received hello")
    message(FATAL_ERROR "the pkg-config build printed: ${output}")
endif()
message(STATUS "built with pkg-config against ${prefix}: ${output}")
