// SIGHUP: re-reads the config file, the client secret and the key ring. The keys the config table marks
// live take effect at once (config/config_keys.hpp); every other changed key is named as needing a
// restart. A broken file changes nothing.
#pragma once

#include <functional>

#include "config/config.hpp"
#include "db/key_codec.hpp"
#include "sync/entra_token_cache.hpp"

namespace esd::sync {

// running: the configuration the daemon's parts read their live limits from. on_applied runs after
// live keys changed (more room may mean more claims now).
void reload(config::config& running, entra_token_cache& tokens, db::key_codec& codec,
            const std::function<void()>& on_applied);

}  // namespace esd::sync
