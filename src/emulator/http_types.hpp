// The HTTP message types every emulator handler speaks, and small helpers for building answers.
#pragma once

#include <cstdint>
#include <string_view>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <string_view>

namespace esd::emulator {

namespace http = boost::beast::http;
using http_request = http::request<http::string_body>;
using http_response = http::response<http::string_body>;

// A JSON answer: Content-Type application/json; charset=utf-8, body serialized by Boost.JSON.
http_response json_response(http::status status, const boost::json::value& body, unsigned version = 11);

http_response text_response(http::status status, std::string body, unsigned version = 11);

// A JSON answer whose body is already serialized (a stored answer sent again byte for byte).
http_response json_text_response(http::status status, std::string body, unsigned version = 11);

// 204 No Content: no body, Content-Length 0.
http_response no_content_response(unsigned version = 11);

// The request target without its query string.
std::string_view target_path(const http_request& req);

// "Bearer <token>" -> token; empty when the header is absent or another scheme.
std::string_view bearer_token(const http_request& req);

// RFC 7231 IMF-fixdate of now, for the Date header.
std::string http_date_now();

// A random version 4 GUID in the 8-4-4-4-12 lower-case form.
std::string random_guid();

// Seconds since the epoch, now.
std::int64_t now_seconds();

// ASCII case-insensitive equality (header values such as "Bearer").
bool iequals(std::string_view a, std::string_view b);

}  // namespace esd::emulator
