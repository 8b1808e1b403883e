"""Role tags, fake data frames and shouted role labels, as regular expressions over ``sources.injection``'s views.

``TAGS`` run over the case-folded native view (punctuation kept: ``<|im_start|>``, ``[INST]``, ``</data>``);
``CASED`` over the text with its case kept ("SYSTEM:", "Final Answer:"). Every match is flagged.
"""

from __future__ import annotations

# --- role tags over the native view (case-folded, punctuation kept) ----------------------------------------

TAGS: tuple[tuple[str, str], ...] = (
    ("role_tag", r"```\s*(?:system|assistant|user|instructions?|prompt|developer|admin)\b"),
    ("role_tag", r"<\|\s*/?\s*(?:im_start|im_end|im_sep|system|user|assistant|endoftext|begin_of_text|end_of_text|"
     r"start_header_id|end_header_id|eot_id|eom_id|fim_\w+|tool|ipython|pad|developer|human|bot|model)\s*\|>"),
    ("role_tag", r"\[\s*/?\s*(?:inst|sys|system|assistant|admin|developer|im_start|im_end|system message|"
     r"system prompt|system note|ai instructions?|instructions? for (?:the )?ai|hidden instructions?)\s*\]"),
    ("role_tag", r"<<\s*/?\s*sys\s*>>|<\s*/?\s*s\s*>\s*\[inst|<\s*(?:start|end)_of_turn\s*>|\bim_start\b|"
     r"<\s*/?\s*(?:begin|end)_of_(?:text|turn|sentence)\s*>"),
    ("role_tag", r"#{2,}\s*(?:system|instructions?|assistant|user|human|response|developer|admin|prompt|"
     r"new instructions?|system prompt|system message|ai instructions?|task)\s*(?::|#|$|\s+(?:prompt|message|"
     r"override|instructions?|note)\b)"),
    ("role_tag", r"\(?\b(?:assistant|ai assistant|chatbot|gpt|model output)\)?\s*:\s*(?:sure|okay|ok|of course|"
     r"certainly|understood|absolutely|got it|i will|i'll|as requested|here is|here's)\b"),
    ("role_tag", r"\b(?:user|human)\s*:.{2,300}?\b(?:assistant|ai|bot|gpt|model)\s*:|\b(?:assistant|ai|bot|gpt)\s*:"
     r".{2,300}?\b(?:user|human)\s*:"),
    ("role_tag", r"(?:^|[\s>\]\)])(?:user|human|assistant|system|ai)\s*:\s*.{2,200}?\b(?:assistant|ai|system|"
     r"model)\s*:\s*(?:sure|okay|ok|of course|certainly|understood|i will|i'll|yes)\b"),
    ("data_frame", r"<\s*/?\s*(?:data|system|instructions?|prompt|context|tool_call|tool_calls|tool|tool_result|"
     r"function_call|function_results?|assistant|user|sys|admin|developer|human|im_start|inst|document|"
     r"documents|item|items|source|sources|content|untrusted|untrusted_data|external|input|output|answer|"
     r"final_answer|response|message|messages|rules|policy|signals|context_window|search_results?|"
     r"retrieved|memory|thinking|scratchpad|reasoning|thought|observation|action)\b\s*(?:[a-z_-]+\s*=|/?>)"),
)

# Shouted role labels in the cased view: "SYSTEM: ..." "ADMIN OVERRIDE:".
CASED: tuple[tuple[str, str], ...] = (
    ("agent_protocol", r"\b(?:Final Answer|FINAL ANSWER|Final answer)\s*[:\uff1a]"),
    ("role_tag", r"\b(?:SYSTEM|ASSISTANT|DEVELOPER|ADMIN|OPERATOR|SUDO|ROOT|INSTRUCTIONS?|NEW INSTRUCTIONS?|"
     r"AI INSTRUCTIONS?|PROMPT)(?: (?:MESSAGE|PROMPT|OVERRIDE|NOTE|INSTRUCTION|NOTICE|COMMAND|UPDATE|ALERT))?"
     r"\s*[:\uff1a]\s*(?!\d)"),
)
