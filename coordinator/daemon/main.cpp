// `fabu-coordinator`: the coordinator daemon and its local administration.
//   init --data DIR [--listen HOST:PORT] [--hostname NAME ...]
//        [--store-url postgresql://USER@HOST:PORT/DB [--store-password-file F]
//         [--store-sslmode MODE]] [--agent-certificates required|optional]
//   serve --data DIR [--listen HOST:PORT] [--log-format text|json|journal]
//   trust add --data DIR PUB
//   trust list --data DIR
//   trust remove --data DIR KEY_ID --reason TEXT
//   audit verify --data DIR --checkpoint FILE [--key PUB]
//   backup --data DIR --out FILE
//   restore --from FILE --data DIR [--force]
//   gc --data DIR
//   migrate --data DIR --to postgresql://USER@HOST:PORT/DB [--password-file F]
//           [--sslmode MODE]
#include <fmt/format.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "coordinator/daemon/audit_anchor.hpp"
#include "coordinator/daemon/backup.hpp"
#include "coordinator/daemon/daemon.hpp"
#include "coordinator/daemon/logging.hpp"
#include "coordinator/daemon/migrate.hpp"
#include "protocol/build_info.hpp"

int main(int argc, char** argv) {
  // Everything the coordinator creates in its data directory (store, WAL,
  // uploads, keys) is its own: set here, not left to whoever started it.
  ::umask(077);
  // The journal under systemd, else text; `serve --log-format` chooses.
  fabu::coordinator::SetUpLogging(fabu::platform::log::DefaultFormat());

  CLI::App app{"fabu-coordinator: release plans, signed packages and the audit trail"};
  app.require_subcommand(1);
  app.set_version_flag("--version", fabu::VersionLine("fabu-coordinator"));
  int exit_code = 0;
  auto fail = [&exit_code](std::string_view command, const fabu::Error& error) {
    std::cerr << "fabu-coordinator " << command << ": " << error.message() << "\n";
    exit_code = 1;
  };

  auto* init = app.add_subcommand("init", "Create a data directory: store, CA, config, admin");
  fabu::coordinator::InitOptions init_options;
  std::string init_listen;
  init->add_option("--data", init_options.data, "Data directory to create")->required();
  init->add_option("--listen", init_listen, "HOST:PORT to serve on (default 127.0.0.1:8443)");
  std::string init_store_url;
  init->add_option("--store-url", init_store_url,
                   "Keep the store in this PostgreSQL database (postgresql://USER@HOST:PORT/DB), "
                   "not in DIR/coordinator.db");
  init->add_option("--store-password-file", init_options.store.password_file,
                   "File holding the PostgreSQL password (else PGPASSFILE, ~/.pgpass)");
  init->add_option("--store-sslmode", init_options.store.sslmode,
                   "libpq sslmode of the PostgreSQL connection (e.g. verify-full)");
  init->add_option("--hostname", init_options.hostnames,
                   "Name for the server certificate (repeatable; localhost is always in)");
  init->add_option("--agent-certificates", init_options.agent_certificates,
                   "required (default): agents prove themselves with their client certificate; "
                   "optional: hosts enrolled without one keep using their credential alone")
      ->check(CLI::IsMember({"required", "optional"}));
  init->callback([&] {
    if (!init_listen.empty()) init_options.listen = init_listen;
    if (!init_store_url.empty()) {
      init_options.store.backend = "postgresql";
      init_options.store.url = init_store_url;
    }
    auto token = fabu::coordinator::InitDataDir(init_options);
    if (!token) return fail("init", token.error());
    std::cout << "initialized " << init_options.data.string() << "\n"
              << "clients pin " << (init_options.data / "ca.pem").string() << "\n"
              << "token of user admin (shown once):\n"
              << *token << std::endl;
  });

  auto* join = app.add_subcommand(
      "join", "Make the data directory of one more coordinator of a PostgreSQL installation");
  fabu::coordinator::JoinOptions join_options;
  std::string join_listen;
  join->add_option("--data", join_options.data, "Data directory to create")->required();
  join->add_option("--from", join_options.from,
                   "A copy of the data directory of a coordinator of the installation")
      ->required();
  join->add_option("--listen", join_listen, "HOST:PORT to serve on (default: the copied one)");
  join->add_option("--hostname", join_options.hostnames,
                   "This coordinator's name or address for its certificate (repeatable; the "
                   "installation's names are added)");
  join->add_option("--store-password-file", join_options.store_password_file,
                   "File holding the PostgreSQL password on this machine (default: the copied "
                   "config's)");
  join->callback([&] {
    if (!join_listen.empty()) join_options.listen = join_listen;
    if (auto ok = fabu::coordinator::JoinInstallation(join_options); !ok) {
      return fail("join", ok.error());
    }
    std::cout << "joined: " << join_options.data.string() << " serves the installation of "
              << join_options.from.string() << "\n"
              << "start it with `fabu-coordinator serve --data " << join_options.data.string()
              << "`; clients and agents pin the same ca.pem" << std::endl;
  });

  auto* serve = app.add_subcommand("serve", "Serve the HTTPS API until SIGTERM");
  fabu::coordinator::ServeOptions serve_options;
  std::string serve_listen;
  serve->add_option("--data", serve_options.data, "Data directory made by init")->required();
  serve->add_option("--listen", serve_listen, "HOST:PORT, overriding the config; port 0: any");
  std::string serve_log_format;
  serve->add_option("--log-format", serve_log_format,
                    "text, json (lines on stderr) or journal (systemd; the default when stderr "
                    "is the journal)");
  serve->callback([&] {
    if (!serve_log_format.empty()) {
      auto format = fabu::platform::log::ParseFormat(serve_log_format);
      if (!format) return fail("serve", format.error());
      fabu::coordinator::SetUpLogging(*format);
    }
    if (!serve_listen.empty()) serve_options.listen = serve_listen;
    serve_options.version = std::string(fabu::BuildVersion());
    serve_options.commit = std::string(fabu::BuildCommit());
    if (auto ok = fabu::coordinator::Serve(serve_options); !ok) fail("serve", ok.error());
  });

  auto* trust = app.add_subcommand("trust", "Publisher keys packages must be signed by");
  trust->require_subcommand(1);
  auto* trust_add = trust->add_subcommand("add", "Trust a publisher public key (PEM)");
  std::filesystem::path trust_data;
  std::filesystem::path trust_key;
  trust_add->add_option("--data", trust_data, "Data directory")->required();
  trust_add->add_option("PUB", trust_key, "Publisher public key file (.pub)")->required();
  trust_add->callback([&] {
    auto key_id = fabu::coordinator::TrustAdd(trust_data, trust_key);
    if (!key_id) return fail("trust add", key_id.error());
    std::cout << *key_id << "\n";
  });
  auto* trust_list = trust->add_subcommand("list", "The trusted publisher keys: id and file");
  std::filesystem::path trust_list_data;
  trust_list->add_option("--data", trust_list_data, "Data directory")->required();
  trust_list->callback([&] {
    auto listed = fabu::coordinator::TrustList(trust_list_data);
    if (!listed) return fail("trust list", listed.error());
    std::cout << *listed;
  });
  auto* trust_remove = trust->add_subcommand(
      "remove", "Stop trusting a publisher key: uploads signed by it are refused from now on");
  std::filesystem::path trust_remove_data;
  std::string trust_remove_id, trust_remove_reason;
  trust_remove->add_option("--data", trust_remove_data, "Data directory")->required();
  trust_remove->add_option("KEY_ID", trust_remove_id, "The key's id, as `trust list` shows it")
      ->required();
  trust_remove->add_option("--reason", trust_remove_reason, "Why (kept in the audit trail)")
      ->required();
  trust_remove->callback([&] {
    if (auto ok =
            fabu::coordinator::TrustRemove(trust_remove_data, trust_remove_id, trust_remove_reason);
        !ok) {
      return fail("trust remove", ok.error());
    }
    std::cout << fmt::format(
        "publisher key {} is no longer trusted; packages stored before "
        "stay\n",
        trust_remove_id);
  });

  auto* audit = app.add_subcommand("audit", "The audit trail, read from the data directory");
  audit->require_subcommand(1);
  auto* audit_verify = audit->add_subcommand(
      "verify", "Check the hash chain against signed checkpoints kept outside the store");
  fabu::coordinator::AnchoredVerifyOptions verify_options;
  audit_verify->add_option("--data", verify_options.data, "Data directory")->required();
  audit_verify
      ->add_option("--checkpoint", verify_options.checkpoints,
                   "Checkpoint file (DIR/audit-checkpoints.jsonl, or a copy kept off the host)")
      ->required();
  audit_verify->add_option("--key", verify_options.public_key,
                           "Checkpoint public key (default DIR/audit-checkpoint.pub)");
  audit_verify->callback([&] {
    auto result = fabu::coordinator::VerifyAnchoredAudit(verify_options);
    if (!result) return fail("audit verify", result.error());
    for (const auto& note : result->notes) std::cout << note << "\n";
    for (const auto& problem : result->problems) {
      std::cerr << "fabu-coordinator audit verify: " << problem << "\n";
    }
    if (!result->ok) exit_code = 1;
  });

  auto* backup = app.add_subcommand(
      "backup", "Back up the data directory into one archive while the daemon runs");
  fabu::coordinator::BackupOptions backup_options;
  backup_options.fabu_version = std::string(fabu::BuildVersion());
  backup->add_option("--data", backup_options.data, "Data directory")->required();
  backup->add_option("--out", backup_options.out, "The backup file to write")->required();
  backup->callback([&] {
    auto summary = fabu::coordinator::Backup(backup_options);
    if (!summary) return fail("backup", summary.error());
    std::cout << fmt::format("backed up {} to {}: {} files, {} bytes, store schema version {}\n",
                             backup_options.data.string(), backup_options.out.string(),
                             summary->files, summary->bytes, summary->schema_version);
    for (const std::string& note : summary->notes) std::cout << "note: " << note << "\n";
  });

  auto* restore = app.add_subcommand(
      "restore", "Restore a data directory from a backup, checked whole before DIR is touched");
  fabu::coordinator::RestoreOptions restore_options;
  restore->add_option("--from", restore_options.from, "The backup file")->required();
  restore->add_option("--data", restore_options.data, "Data directory to restore into")->required();
  restore->add_flag("--force", restore_options.force,
                    "Replace a data directory that already holds a coordinator");
  restore->callback([&] {
    auto summary = fabu::coordinator::Restore(restore_options);
    if (!summary) return fail("restore", summary.error());
    std::cout << fmt::format(
        "restored {} from {}: {} files, store schema version {}, backed up {} by fabu {}\n",
        restore_options.data.string(), restore_options.from.string(), summary->files,
        summary->schema_version, summary->created, summary->fabu_version);
  });

  auto* gc = app.add_subcommand(
      "gc", "Remove what the retention period no longer keeps (config.json retention.days)");
  std::filesystem::path gc_data;
  gc->add_option("--data", gc_data, "Data directory")->required();
  gc->callback([&] {
    auto summary = fabu::coordinator::Gc(gc_data);
    if (!summary) return fail("gc", summary.error());
    std::cout << fabu::coordinator::DescribeGc(*summary);
    for (const std::string& problem : summary->problems) {
      std::cerr << "fabu-coordinator gc: " << problem << "\n";
      exit_code = 1;
    }
  });

  auto* migrate = app.add_subcommand(
      "migrate", "Move a stopped coordinator's store from SQLite to an empty PostgreSQL database");
  fabu::coordinator::MigrateOptions migrate_options;
  migrate->add_option("--data", migrate_options.data, "Data directory")->required();
  migrate
      ->add_option("--to", migrate_options.url,
                   "The database: postgresql://USER@HOST:PORT/DB (no password in it)")
      ->required();
  migrate->add_option("--password-file", migrate_options.password_file,
                      "A file holding the role's password (else PGPASSFILE or ~/.pgpass)");
  migrate->add_option("--sslmode", migrate_options.sslmode, "libpq's sslmode, e.g. verify-full");
  migrate->callback([&] {
    auto summary = fabu::coordinator::MigrateToPostgresql(migrate_options);
    if (!summary) return fail("migrate", summary.error());
    std::int64_t rows = 0;
    for (const auto& table : summary->tables) rows += table.rows;
    std::cout << fmt::format(
        "copied {} rows of {} tables to {} (schema version {}); the audit chain verifies there "
        "({} entries, the migration's own included)\n",
        rows, summary->tables.size(), summary->destination, summary->schema_version,
        summary->audit_entries);
    for (const auto& table : summary->tables) {
      std::cout << fmt::format("  {:<28} {:>10}\n", table.name, table.rows);
    }
    std::cout << fmt::format(
        "{} now names the PostgreSQL store; {} is left as it was (remove it once the "
        "coordinator runs on PostgreSQL)\n",
        (migrate_options.data / "config.json").string(),
        (migrate_options.data / "coordinator.db").string());
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
