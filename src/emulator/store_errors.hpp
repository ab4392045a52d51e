// The Store's error answers: the JSON ServiceError envelope of collections.mp / purchase.mp, e.g.
// {"code":"Unauthorized","data":[],"details":[],"innererror":{"code":"AuthenticationTokenInvalid",...},
//  "message":"...","source":"CollectionsFD"}, and the FGRL 429 text body with its Retry-After header.
#pragma once

#include <string>
#include <string_view>

#include "emulator/http_types.hpp"

namespace esd::emulator {

// The service that answers, as real error bodies name it: CollectionsFD for collections.mp (query, consume,
// renewal of a collections key), PurchaseFD for purchase.mp (grant, recurrences, renewal of a purchase key).
inline constexpr std::string_view collections_source = "CollectionsFD";
inline constexpr std::string_view purchase_source = "PurchaseFD";

// inner_code: AuthenticationTokenInvalid, PartnerAadTicketRequired, InconsistentClientId, InvalidParameter,
// ... detail: the inner message; never a token or a key.
http_response store_error(http::status status, std::string_view inner_code, std::string_view detail,
                          std::string_view source = collections_source);

// A 5xx from POST /v8.0/b2b/recurrences/query, shaped like the one reported in MicrosoftDocs/windows-dev-docs
// issue 4495: {"code":"InternalServerError","data":[],"details":[],"innererror":{"code":..,"data":[],
// "details":[],"message":..}}, without the top-level message and source of store_error.
http_response recurrences_server_error(http::status status);

// 429 with "The rate limit of X operations in Y seconds has been exceeded for aspect Z." and Retry-After.
http_response rate_limited(int operations, int window_seconds, int retry_after_seconds);

// Adds the MS-CorrelationId / MS-RequestId / MS-CV headers the Store sends with every answer.
void add_store_headers(http_response& res);

}  // namespace esd::emulator
