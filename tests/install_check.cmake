# `cmake --install` into a temporary prefix puts every file where a packager expects it.
# Usage: cmake -DBUILD_DIR=... -DPREFIX=... -DCONFIGURED_BINDIR=... -DCONFIGURED_SYSCONFDIR=... -P install_check.cmake
file(REMOVE_RECURSE ${PREFIX})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${PREFIX}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed: ${out}${err}")
endif()
foreach(f bin/entitlement-syncd bin/entitlement-store-emulator lib/systemd/system/entitlement-syncd.service
          etc/entitlement-syncd/entitlement-syncd.conf share/entitlement-syncd/sql/001_core.sql
          share/entitlement-syncd/sql/002_keys_and_roles.sql share/doc/entitlement-syncd/README.md)
  if(NOT EXISTS ${PREFIX}/${f})
    message(FATAL_ERROR "not installed: ${f}")
  endif()
endforeach()
file(READ ${PREFIX}/lib/systemd/system/entitlement-syncd.service unit)
# Paths in the unit are those of the configured prefix (packagers configure with --prefix /usr).
string(FIND "${unit}" "ExecStart=${CONFIGURED_BINDIR}/entitlement-syncd --config ${CONFIGURED_SYSCONFDIR}/entitlement-syncd/entitlement-syncd.conf run" at)
if(at EQUAL -1)
  message(FATAL_ERROR "the installed unit does not start the installed binary with the installed config:\n${unit}")
endif()
execute_process(COMMAND ${PREFIX}/bin/entitlement-syncd --version RESULT_VARIABLE rc OUTPUT_VARIABLE v)
if(NOT rc EQUAL 0 OR NOT v MATCHES "^entitlement-syncd ")
  message(FATAL_ERROR "the installed binary does not run: ${v}")
endif()
message(STATUS "installed layout OK")
