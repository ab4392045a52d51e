#include "sync/config_reload.hpp"

#include "config/config_keys.hpp"
#include "ops/log.hpp"
#include "ops/systemd_notify.hpp"
#include "store/key_sealing.hpp"

namespace esd::sync {

namespace {

std::string joined(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

}  // namespace

void reload(config::config& running, entra_token_cache& tokens, db::key_codec& codec,
            const std::function<void()>& on_applied) {
  ops::notify_reloading();
  try {
    auto fresh = config::load_config(running.source_path);
    // Files are read before anything is applied, so that an unreadable one changes nothing.
    auto secret = config::read_secret_file(running.entra.client_secret_file, "entra.client_secret_file");
    std::optional<store::keyring> ring;
    if (!running.security.key_encryption_key_file.empty())
      ring = store::keyring::load_file(running.security.key_encryption_key_file);

    const std::string level_before = running.log.level;
    auto changes = config::apply_live_keys(running, fresh);
    log::level level;
    if (running.log.level != level_before && log::parse_level(running.log.level, level)) log::set_level(level);
    if (!changes.applied.empty()) on_applied();

    tokens.set_client_secret(std::move(secret));
    changes.applied.emplace_back("client secret re-read");
    if (ring) {
      codec.replace_ring(std::move(*ring));
      changes.applied.push_back("key ring re-read (sealing with key id " + codec.current_key_id() + ")");
    }
    std::string line = "reloaded " + running.source_path + ": applied: " + joined(changes.applied);
    if (!changes.needs_restart.empty()) line += "; changed but needs a restart: " + joined(changes.needs_restart);
    log::info(line);
  } catch (const std::exception& e) {
    log::error(std::string("reload failed, keeping the running configuration: ") + e.what());
  }
  ops::notify_ready("running");
}

}  // namespace esd::sync
