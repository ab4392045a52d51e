#include "emulator/emulator_stats.hpp"

#include <boost/json/object.hpp>

namespace esd::emulator {

namespace json = boost::json;

namespace {

json::object counts(const std::map<std::string, std::uint64_t>& m) {
  json::object o;
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}

}  // namespace

json::value emulator_stats::to_json() const {
  json::object last;
  for (const auto& [user, value] : last_modified_after)
    last[user] = value ? json::value(*value) : json::value(nullptr);
  return json::object{{"tokenRequests", token_requests},
                      {"renewals", renewals},
                      {"renewalsSucceeded", renewals_succeeded},
                      {"collectionsQueries", collections_queries},
                      {"itemsServed", items_served},
                      {"grantRequests", grant_requests},
                      {"grantsPerformed", grants_performed},
                      {"grantReplays", grant_replays},
                      {"grantConflicts", grant_conflicts},
                      {"recurrenceQueries", recurrence_queries},
                      {"subscriptionsServed", subscriptions_served},
                      {"consumeRequests", consume_requests},
                      {"consumesPerformed", consumes_performed},
                      {"consumeReplays", consume_replays},
                      {"tlsHandshakes", tls_handshakes},
                      {"requestsByPath", counts(requests_by_path)},
                      {"statusCounts", counts(status_counts)},
                      {"faultsInjected", counts(faults_injected)},
                      {"queriesByUser", counts(queries_by_user)},
                      {"lastModifiedAfter", std::move(last)},
                      {"userOverlaps", user_overlaps},
                      {"retryAftersSent", retry_afters_sent},
                      {"earlyAfterRetryAfter", early_after_retry_after}};
}

}  // namespace esd::emulator
