# Installation and Debian packages (CPack): `scripts/package` builds
#   fabu-agent_<version>-<rev>_<arch>.deb        the agent, its unit, the install guide
#   fabu-coordinator_<version>-<rev>_<arch>.deb  the coordinator, its unit, the guides
#   fabu-cli_<version>-<rev>_<arch>.deb          the fabu command line, for a
#                                                release manager's workstation
# Every package carries its copyright file and changelog.Debian.gz in
# /usr/share/doc/<package>, its program's manual page (packaging/man/) and its
# maintainer scripts (packaging/debian/).
# docs/packages.md says what the packages do on install, remove and purge.
set(FABU_UNIT_DIR lib/systemd/system)
set(FABU_PACKAGE_MAINTAINER "fabu maintainers <fabu@example.com>"
    CACHE STRING "Maintainer of the Debian packages (name <address>)")
# The packaging revision: 0.1.0 without one put /usr/bin/fabu in
# fabu-coordinator; 0.1.0-1 has it in fabu-cli. Reset to 1 with a new version.
set(FABU_PACKAGE_REVISION 1)
# The date of the changelog entry (Debian changelog format), fixed so that
# the packages are reproducible; bump it with the version.
set(FABU_PACKAGE_DATE "Sat, 05 Dec 2026 00:00:00 +0000")

install(TARGETS fabu-agent RUNTIME DESTINATION bin COMPONENT agent)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/systemd/fabu-agent.service
        DESTINATION ${FABU_UNIT_DIR} COMPONENT agent)
install(FILES ${PROJECT_SOURCE_DIR}/docs/agent.md DESTINATION share/doc/fabu-agent
        RENAME install.md COMPONENT agent)

install(TARGETS fabu-coordinator RUNTIME DESTINATION bin COMPONENT coordinator)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/systemd/fabu-coordinator.service
        DESTINATION ${FABU_UNIT_DIR} COMPONENT coordinator)
install(FILES ${PROJECT_SOURCE_DIR}/docs/coordinator.md DESTINATION share/doc/fabu-coordinator
        RENAME install.md COMPONENT coordinator)
install(FILES ${PROJECT_SOURCE_DIR}/docs/api.md ${PROJECT_SOURCE_DIR}/docs/package-format.md
        DESTINATION share/doc/fabu-coordinator COMPONENT coordinator)

install(TARGETS fabu RUNTIME DESTINATION bin COMPONENT cli)

# copyright and changelog.Debian.gz (gzip -9n: no name, no time stamp) per package.
set(fabu_doc_dir ${CMAKE_CURRENT_BINARY_DIR}/package-docs)
configure_file(${PROJECT_SOURCE_DIR}/packaging/debian/changelog.in ${fabu_doc_dir}/changelog @ONLY)
execute_process(COMMAND gzip -9nc ${fabu_doc_dir}/changelog
                OUTPUT_FILE ${fabu_doc_dir}/changelog.Debian.gz COMMAND_ERROR_IS_FATAL ANY)
foreach(component IN ITEMS agent coordinator cli)
  install(FILES ${PROJECT_SOURCE_DIR}/packaging/debian/copyright ${fabu_doc_dir}/changelog.Debian.gz
          DESTINATION share/doc/fabu-${component} COMPONENT ${component})
endforeach()

# Manual pages, gzip -9n too: fabu-agent(1) in fabu-agent, and so on.
foreach(component IN ITEMS agent coordinator cli)
  set(page fabu-${component})
  if(component STREQUAL "cli")
    set(page fabu)
  endif()
  configure_file(${PROJECT_SOURCE_DIR}/packaging/man/${page}.1 ${fabu_doc_dir}/${page}.1 @ONLY)
  execute_process(COMMAND gzip -9nc ${fabu_doc_dir}/${page}.1
                  OUTPUT_FILE ${fabu_doc_dir}/${page}.1.gz COMMAND_ERROR_IS_FATAL ANY)
  install(FILES ${fabu_doc_dir}/${page}.1.gz DESTINATION share/man/man1 COMPONENT ${component})
endforeach()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME fabu)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_DEBIAN_PACKAGE_RELEASE ${FABU_PACKAGE_REVISION})
set(CPACK_PACKAGE_CONTACT "${FABU_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
# Binaries without their symbol tables (a RelWithDebInfo build's too), and
# maintainer scripts 0755 whatever their mode in the checkout.
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_AGENT_PACKAGE_NAME fabu-agent)
set(CPACK_DEBIAN_AGENT_DESCRIPTION
    "fabu release agent\nInstalls signed release packages assigned by a fabu coordinator,\nverifies them, reports every step and rolls back on failure.")
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_EXTRA "")
foreach(script IN ITEMS postinst prerm postrm)
  list(APPEND CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_EXTRA
       ${PROJECT_SOURCE_DIR}/packaging/debian/fabu-agent/${script})
endforeach()

set(CPACK_DEBIAN_COORDINATOR_PACKAGE_NAME fabu-coordinator)
set(CPACK_DEBIAN_COORDINATOR_PACKAGE_DEPENDS adduser)
# The coordinator's host is administered with the CLI too (the first admin,
# enrollment tokens), but the coordinator runs without it.
set(CPACK_DEBIAN_COORDINATOR_PACKAGE_RECOMMENDS "fabu-cli (= ${PROJECT_VERSION}-${FABU_PACKAGE_REVISION})")
set(CPACK_DEBIAN_COORDINATOR_DESCRIPTION
    "fabu release coordinator\nHolds release plans through review, test and acceptance, stores signed\npackages and dispatches them to fabu agents. The command line is in\nfabu-cli.")
set(CPACK_DEBIAN_COORDINATOR_PACKAGE_CONTROL_EXTRA "")
foreach(script IN ITEMS postinst prerm postrm)
  list(APPEND CPACK_DEBIAN_COORDINATOR_PACKAGE_CONTROL_EXTRA
       ${PROJECT_SOURCE_DIR}/packaging/debian/fabu-coordinator/${script})
endforeach()

set(CPACK_DEBIAN_CLI_PACKAGE_NAME fabu-cli)
# fabu-coordinator 0.1.0 (no revision) shipped /usr/bin/fabu.
set(CPACK_DEBIAN_CLI_PACKAGE_BREAKS "fabu-coordinator (<< 0.1.0-1~)")
set(CPACK_DEBIAN_CLI_PACKAGE_REPLACES "fabu-coordinator (<< 0.1.0-1~)")
set(CPACK_DEBIAN_CLI_DESCRIPTION
    "fabu release manager's command line\nThe fabu command: release plans, reviews, tests, rollouts, hosts,\nenrollment tokens, reports and the audit trail, against a fabu\ncoordinator over HTTPS.")

set(CPACK_COMPONENTS_ALL agent coordinator cli)
include(CPack)
