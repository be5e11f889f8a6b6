// Chat templates: the common families recognised from the GGUF's Jinja text (we render them
// with fixed C++ code, as llama.cpp's built-in templates do, rather than running Jinja).
#include <string>

#include "octet/tokenizer.h"

namespace octet {
namespace {

std::string trim(const std::string& s) {
  const char* ws = " \t\n\r\v\f";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

}  // namespace

ChatTemplate detect_chat_template_text(std::string_view t) {
  auto has = [&](std::string_view s) { return t.find(s) != std::string_view::npos; };
  if (t.empty()) return ChatTemplate::kNone;
  if (has("<|im_start|>")) return ChatTemplate::kChatML;
  if (has("<start_of_turn>")) return ChatTemplate::kGemma;
  if (has("<|start_header_id|>") && has("<|end_header_id|>")) return ChatTemplate::kLlama3;
  if (has("<|assistant|>") && has("<|end|>")) return ChatTemplate::kPhi3;
  if (has("<|user|>")) return ChatTemplate::kZephyr;
  if (has("[INST]")) return ChatTemplate::kLlama2;
  return ChatTemplate::kNone;
}

ChatTemplate detect_chat_template(const gguf::File& f) {
  const auto t = f.get_string("tokenizer.chat_template");
  return t ? detect_chat_template_text(*t) : ChatTemplate::kNone;
}

ChatTemplate guess_chat_template(const Tokenizer& tok) {
  auto has = [&](const char* s) { return tok.find_token(s) >= 0; };
  if (has("<start_of_turn>") && has("<end_of_turn>")) return ChatTemplate::kGemma;
  if (has("<|im_start|>") && has("<|im_end|>")) return ChatTemplate::kChatML;
  if (has("<|start_header_id|>") && has("<|eot_id|>")) return ChatTemplate::kLlama3;
  if (has("<|assistant|>") && has("<|end|>")) return ChatTemplate::kPhi3;
  return ChatTemplate::kNone;
}

const char* chat_template_name(ChatTemplate t) {
  switch (t) {
    case ChatTemplate::kNone: return "none";
    case ChatTemplate::kGemma: return "gemma";
    case ChatTemplate::kChatML: return "chatml";
    case ChatTemplate::kLlama2: return "llama2";
    case ChatTemplate::kLlama3: return "llama3";
    case ChatTemplate::kPhi3: return "phi3";
    case ChatTemplate::kZephyr: return "zephyr";
  }
  return "unknown";
}

std::string apply_chat_template(ChatTemplate t, const std::vector<ChatMessage>& msgs,
                                bool add_generation_prompt) {
  std::string s;
  switch (t) {
    case ChatTemplate::kNone:
      // No template: the contents, one per line.
      for (const auto& m : msgs) s += m.content + "\n";
      break;
    case ChatTemplate::kGemma: {
      // Gemma has no system role: the system text opens the first user turn.
      std::string sys;
      for (const auto& m : msgs) {
        if (m.role == "system") {
          sys += trim(m.content);
          continue;
        }
        const std::string role = m.role == "assistant" ? "model" : m.role;
        s += "<start_of_turn>" + role + "\n";
        if (!sys.empty() && role != "model") {
          s += sys + "\n\n";
          sys.clear();
        }
        s += trim(m.content) + "<end_of_turn>\n";
      }
      if (add_generation_prompt) s += "<start_of_turn>model\n";
      break;
    }
    case ChatTemplate::kChatML:
      for (const auto& m : msgs) s += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      if (add_generation_prompt) s += "<|im_start|>assistant\n";
      break;
    case ChatTemplate::kLlama2: {
      // [INST] <<SYS>>\nsys\n<</SYS>>\n\nuser [/INST] answer</s><s>[INST] ...
      bool in_turn = true;
      s += "[INST] ";
      for (const auto& m : msgs) {
        if (!in_turn) {
          in_turn = true;
          s += "<s>[INST] ";
        }
        if (m.role == "system") {
          s += "<<SYS>>\n" + m.content + "\n<</SYS>>\n\n";
        } else if (m.role == "user") {
          s += m.content + " [/INST]";
        } else {
          s += m.content + "</s>";
          in_turn = false;
        }
      }
      break;
    }
    case ChatTemplate::kLlama3:
      for (const auto& m : msgs)
        s += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim(m.content) +
             "<|eot_id|>";
      if (add_generation_prompt) s += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    case ChatTemplate::kPhi3:
      for (const auto& m : msgs) s += "<|" + m.role + "|>\n" + m.content + "<|end|>\n";
      if (add_generation_prompt) s += "<|assistant|>\n";
      break;
    case ChatTemplate::kZephyr:
      for (const auto& m : msgs) s += "<|" + m.role + "|>\n" + m.content + "</s>\n";
      if (add_generation_prompt) s += "<|assistant|>\n";
      break;
  }
  return s;
}

}  // namespace octet
