#include "emulator/subscriptions.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <vector>

#include "emulator/http_types.hpp"
#include "emulator/store_keys.hpp"
#include "emulator/store_ticks.hpp"

namespace esd::emulator {

namespace json = boost::json;

namespace {

constexpr std::int64_t day_ticks = 86400 * ticks_per_second;

std::string subscription_id() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) throw std::runtime_error("RAND_bytes failed");
  static constexpr char hex[] = "0123456789abcdef";
  std::string s = "mdr:0:";
  for (unsigned char c : b) {
    s += hex[c >> 4];
    s += hex[c & 15];
  }
  return s + ":" + random_guid();
}

struct entry_reader {
  const json::object& o;
  std::string where;

  [[noreturn]] void fail(std::string_view field, std::string_view what) const {
    throw std::invalid_argument(where + ": " + std::string(field) + " " + std::string(what));
  }
  std::optional<std::string> text(std::string_view name) const {
    const auto* v = o.if_contains(name);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_string() || v->as_string().empty()) fail(name, "must be a non-empty string");
    return std::string(v->as_string());
  }
  std::optional<bool> flag(std::string_view name) const {
    const auto* v = o.if_contains(name);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_bool()) fail(name, "must be true or false");
    return v->as_bool();
  }
  std::optional<std::int64_t> date(std::string_view name) const {
    const auto s = text(name);
    if (!s) return std::nullopt;
    const auto ticks = parse_ticks(*s);
    if (!ticks) fail(name, "must be a Store date such as 2021-08-25T23:59:59.0000000+00:00");
    return *ticks;
  }
};

json::object complete(const json::object& in, const std::string& where, const std::string& player_id,
                      std::int64_t now) {
  const entry_reader r{in, where};
  const std::string state = r.text("recurrenceState").value_or("Active");
  const auto product = r.text("productId");
  if (!product) r.fail("productId", "is required");
  const auto cancelled = r.date("cancellationDate");
  if (cancelled && state != "Canceled") r.fail("cancellationDate", "is only for recurrenceState Canceled");
  const std::int64_t cancelled_at = cancelled.value_or(now);
  const std::int64_t start = r.date("startTime").value_or(std::min(now, cancelled_at));
  // "When a subscription is Canceled, the expirationTime will be updated with the date and time of the
  // cancellation" (get-subscriptions-for-a-user.md).
  const std::int64_t expiration =
      r.date("expirationTime").value_or(state == "Canceled" ? cancelled_at : start + 30 * day_ticks);
  const bool in_grace = state == "Active" || state == "InDunning";
  const std::int64_t with_grace =
      r.date("expirationTimeWithGrace").value_or(in_grace ? expiration + 14 * day_ticks : expiration);

  // In the order of the documented examples (recurrenceState after startTime, cancellationDate last).
  json::object fields;
  fields["autoRenew"] = r.flag("autoRenew").value_or(true);
  fields["beneficiary"] =
      r.text("beneficiary").value_or("pub:" + store_key_authority::opaque_user_id(player_id));
  fields["expirationTime"] = format_ticks(expiration);
  fields["expirationTimeWithGrace"] = format_ticks(with_grace);
  fields["id"] = r.text("id").value_or(subscription_id());
  fields["isTrial"] = r.flag("isTrial").value_or(false);
  fields["lastModified"] = format_ticks(now);
  fields["market"] = r.text("market").value_or("US");
  fields["productId"] = *product;
  fields["skuId"] = r.text("skuId").value_or("0010");
  fields["startTime"] = format_ticks(start);
  fields["recurrenceState"] = state;
  if (state == "Canceled") fields["cancellationDate"] = format_ticks(cancelled_at);

  // Anything else the test sets is served as given, after the documented fields.
  std::vector<std::string_view> extra;
  for (const auto& kv : in)
    if (!fields.contains(kv.key()) && !kv.value().is_null()) extra.push_back(kv.key());
  std::sort(extra.begin(), extra.end());
  for (auto k : extra) fields[k] = in.at(k);
  return fields;
}

}  // namespace

json::array subscription_book::replace(const std::string& player_id, const json::array& list,
                                       std::int64_t now_ticks) {
  subscriptions fresh;
  json::array ids;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string where = "subscriptions[" + std::to_string(i) + "]";
    const auto* o = list[i].if_object();
    if (!o) throw std::invalid_argument(where + " must be a JSON object");
    json::object fields = complete(*o, where, player_id, now_ticks);
    std::string id(fields.at("id").as_string());
    if (fresh.contains(id)) throw std::invalid_argument(where + ": id " + id + " is listed twice");
    ids.push_back(json::value(id));
    fresh.emplace(std::move(id), std::move(fields));
  }
  by_player_[player_id] = std::move(fresh);
  return ids;
}

const subscription_book::subscriptions* subscription_book::find(const std::string& player_id) const {
  const auto it = by_player_.find(player_id);
  return it == by_player_.end() ? nullptr : &it->second;
}

}  // namespace esd::emulator
