// Apps file parsing: each app gets a key, a priority and limits (docs/serve.md).
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <set>

#include "octet/serve.h"

namespace octet::serve {

Expected<std::vector<AppConfig>> parse_apps(const std::string& text) {
  using nlohmann::json;
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    return Status::Error(fmt::format("apps file: invalid JSON: {}", e.what()));
  }
  if (!j.is_object() || !j.contains("apps") || !j["apps"].is_array() || j["apps"].empty())
    return Status::Error("apps file: expected {\"apps\": [ {...}, ... ]} with at least one app");
  std::vector<AppConfig> apps;
  std::set<std::string> names, keys;
  for (const auto& a : j["apps"]) {
    if (!a.is_object()) return Status::Error("apps file: each app must be an object");
    AppConfig c;
    auto str = [&](const char* k, std::string* out) -> Status {
      if (!a.contains(k)) return Status::Ok();
      if (!a[k].is_string()) return Status::Error(fmt::format("apps file: '{}' must be a string", k));
      *out = a[k].get<std::string>();
      return Status::Ok();
    };
    auto num = [&](const char* k, int64_t* out) -> Status {
      if (!a.contains(k)) return Status::Ok();
      if (!a[k].is_number_integer() || a[k].get<int64_t>() < 0)
        return Status::Error(fmt::format("apps file: '{}' must be an integer >= 0", k));
      *out = a[k].get<int64_t>();
      return Status::Ok();
    };
    for (auto it = a.begin(); it != a.end(); ++it) {
      static const std::set<std::string> known = {"name", "key", "priority", "max_context",
                                                  "max_tokens", "requests_per_minute"};
      if (!known.count(it.key()))
        return Status::Error(fmt::format("apps file: unknown field '{}'", it.key()));
    }
    std::string prio = "foreground";
    OCTET_RETURN_IF_ERROR(str("name", &c.name));
    OCTET_RETURN_IF_ERROR(str("key", &c.key));
    OCTET_RETURN_IF_ERROR(str("priority", &prio));
    OCTET_RETURN_IF_ERROR(num("max_context", &c.max_context));
    OCTET_RETURN_IF_ERROR(num("max_tokens", &c.max_tokens));
    OCTET_RETURN_IF_ERROR(num("requests_per_minute", &c.requests_per_minute));
    if (c.name.empty()) return Status::Error("apps file: every app needs a non-empty 'name'");
    if (c.key.empty())
      return Status::Error(fmt::format("apps file: app '{}' needs a non-empty 'key'", c.name));
    if (prio == "foreground") c.priority = Priority::kForeground;
    else if (prio == "background") c.priority = Priority::kBackground;
    else return Status::Error(fmt::format("apps file: app '{}': priority must be 'foreground' "
                                          "or 'background'", c.name));
    if (!names.insert(c.name).second)
      return Status::Error(fmt::format("apps file: duplicate app name '{}'", c.name));
    if (!keys.insert(c.key).second)
      return Status::Error(fmt::format("apps file: app '{}' reuses another app's key", c.name));
    apps.push_back(std::move(c));
  }
  return apps;
}

}  // namespace octet::serve
