# Installation and Debian packages (CPack): `scripts/package` builds
#   fabu-agent_<version>_<arch>.deb        the agent, its unit, the install guide
#   fabu-coordinator_<version>_<arch>.deb  the coordinator, the fabu CLI, its unit, the guides
set(FABU_UNIT_DIR lib/systemd/system)

install(TARGETS fabu-agent RUNTIME DESTINATION bin COMPONENT agent)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/systemd/fabu-agent.service
        DESTINATION ${FABU_UNIT_DIR} COMPONENT agent)
install(FILES ${PROJECT_SOURCE_DIR}/docs/agent.md DESTINATION share/doc/fabu-agent
        RENAME install.md COMPONENT agent)

install(TARGETS fabu-coordinator fabu RUNTIME DESTINATION bin COMPONENT coordinator)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/systemd/fabu-coordinator.service
        DESTINATION ${FABU_UNIT_DIR} COMPONENT coordinator)
install(FILES ${PROJECT_SOURCE_DIR}/docs/coordinator.md DESTINATION share/doc/fabu-coordinator
        RENAME install.md COMPONENT coordinator)
install(FILES ${PROJECT_SOURCE_DIR}/docs/api.md ${PROJECT_SOURCE_DIR}/docs/package-format.md
        DESTINATION share/doc/fabu-coordinator COMPONENT coordinator)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME fabu)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "fabu maintainers <fabu@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_AGENT_PACKAGE_NAME fabu-agent)
set(CPACK_DEBIAN_AGENT_DESCRIPTION
    "fabu release agent\n Installs signed release packages assigned by a fabu coordinator,\n verifies them, reports every step and rolls back on failure.")
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/packaging/debian/fabu-agent/postinst)
set(CPACK_DEBIAN_COORDINATOR_PACKAGE_NAME fabu-coordinator)
set(CPACK_DEBIAN_COORDINATOR_PACKAGE_DEPENDS adduser)
set(CPACK_DEBIAN_COORDINATOR_DESCRIPTION
    "fabu release coordinator and CLI\n Holds release plans through review, test and acceptance, stores signed\n packages and dispatches them to fabu agents; the fabu command line.")
set(CPACK_DEBIAN_COORDINATOR_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/debian/fabu-coordinator/postinst)
set(CPACK_COMPONENTS_ALL agent coordinator)
include(CPack)
