#include "emulator/catalog.hpp"

#include <algorithm>
#include <stdexcept>

#include "emulator/http_types.hpp"

namespace esd::emulator {

namespace json = boost::json;

namespace {

std::string required_text(const json::object& o, std::string_view name, const std::string& where) {
  const auto* v = o.if_contains(name);
  if (!v || !v->is_string() || v->as_string().empty())
    throw std::invalid_argument(where + ": " + std::string(name) + " must be a non-empty string");
  return std::string(v->as_string());
}

std::string optional_text(const json::object& o, std::string_view name, const std::string& where,
                          std::string fallback) {
  const auto* v = o.if_contains(name);
  if (!v || v->is_null()) return fallback;
  if (!v->is_string() || v->as_string().empty())
    throw std::invalid_argument(where + ": " + std::string(name) + " must be a non-empty string");
  return std::string(v->as_string());
}

}  // namespace

json::object catalog_product::to_json() const {
  return json::object{{"productId", product_id},
                      {"skuId", sku_id},
                      {"availabilityId", availability_id},
                      {"productType", product_type},
                      {"title", title}};
}

bool is_consumable(std::string_view product_type) {
  return iequals(product_type, "UnmanagedConsumable") || iequals(product_type, "Consumable");
}

void product_catalog::replace(const json::array& products) {
  std::vector<catalog_product> fresh;
  for (std::size_t i = 0; i < products.size(); ++i) {
    const std::string where = "products[" + std::to_string(i) + "]";
    const auto* o = products[i].if_object();
    if (!o) throw std::invalid_argument(where + " must be a JSON object");
    catalog_product p;
    p.product_id = required_text(*o, "productId", where);
    p.sku_id = required_text(*o, "skuId", where);
    p.availability_id = required_text(*o, "availabilityId", where);
    p.product_type = optional_text(*o, "productType", where, "Durable");
    p.title = optional_text(*o, "title", where, p.product_id);
    const bool duplicate = std::any_of(fresh.begin(), fresh.end(), [&](const catalog_product& q) {
      return iequals(q.product_id, p.product_id) && iequals(q.sku_id, p.sku_id) &&
             iequals(q.availability_id, p.availability_id);
    });
    if (duplicate)
      throw std::invalid_argument(where + ": " + p.product_id + "/" + p.sku_id + "/" + p.availability_id +
                                  " is listed twice");
    fresh.push_back(std::move(p));
  }
  products_ = std::move(fresh);
}

const catalog_product* product_catalog::find(std::string_view product_id, std::string_view sku_id,
                                             std::string_view availability_id) const {
  for (const auto& p : products_)
    if (iequals(p.product_id, product_id) && iequals(p.sku_id, sku_id) &&
        iequals(p.availability_id, availability_id))
      return &p;
  return nullptr;
}

std::string_view product_catalog::first_mismatch(std::string_view product_id, std::string_view sku_id) const {
  const auto has = [&](auto&& match) { return std::any_of(products_.begin(), products_.end(), match); };
  if (!has([&](const catalog_product& p) { return iequals(p.product_id, product_id); })) return "productId";
  if (!has([&](const catalog_product& p) {
        return iequals(p.product_id, product_id) && iequals(p.sku_id, sku_id);
      }))
    return "skuId";
  return "availabilityId";
}

json::array product_catalog::to_json() const {
  json::array out;
  for (const auto& p : products_) out.push_back(p.to_json());
  return out;
}

}  // namespace esd::emulator
