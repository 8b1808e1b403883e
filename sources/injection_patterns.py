"""The families of phrasing that read as instructions to an AI, as regular expressions over normalised text.

``sources.injection`` prepares the views these run on: ``latin`` (case-folded, look-alike letters, accents,
leetspeak and spaced-out letters folded to plain Latin), ``native`` (case-folded, every script kept, for
``sources.injection_tags`` and ``sources.injection_languages``), ``cased`` (case kept, for shouted role
labels) and ``squashed`` (letters only, read only when letters were spelled apart). Each family is general (a verb
class, a target class, a context class), never a list of known payloads.

The rule for quoting: wording that *addresses* the reader or model imperatively is flagged wherever it
stands, inside quotation marks too (a model reads the same words; a payload can wrap itself in quotes).
Reported or descriptive wording is not: "attackers told it to ignore its instructions", "tricked into
ignoring previous instructions", "the 'ignore previous instructions' attack", past tense and gerunds.
"""

from __future__ import annotations

import re

# --- shared pieces (latin view: lower case, ASCII letters) ---------------------------------------------

_AI = (r"(?:ai|a\.i\.|llms?|gpts?|chatgpt|claude|gemini|language models?|large language models?|chat ?bots?|"
       r"bots?|agents?|assistants?|models?|crawlers?|scrapers?|summari[sz]ers?|copilots?|ai (?:agents?|models?|"
       r"assistants?|systems?|writers?|tools?|analysts?|researchers?)|autonomous agents?|trading bots?|"
       r"news bots?|robots?|machines?|tapewatch|writers?|summary writers?|automated (?:agents?|systems?|tools?)|"
       r"(?:automated |ai |news )?digests?|(?:automated |ai |news )?aggregators?|newsbots?|"
       r"(?:summari[sz]ation|ai|answer|llm|language|inference) (?:engines?|tools?|systems?|pipelines?))")
# "AI agent tokens", "AI agent builders": the AI narrative in crypto, not a model being addressed.
_NOT_AI_TOPIC = (r"(?!(?:\s+(?:agents?|models?|assistants?|bots?|agent[- ]?based))?\s*(?:(?:operator|owner|"
     r"maker|user|"
                 r"token|coin|narrative|project|holder|investor|trader|builder|developer|dev|team|founder|stock|"
                 r"platform|launchpad|framework|play|startup|compan(?:y|ie)|firm|summit|conference|fund|etf|"
                 r"researcher|engineer|lab|enthusiast|fan|skeptic|creator|professional)s?|sector|index|indices|"
                 r"market|season|space|economy|hype|mania|regulation|week|category|meta)\b)")
# What an order to an AI reader is about: a cashtag, this post or account, "it".
_OBJECT = (r"(?:\$[a-z]\w*|(?:this|these|my|our) (?:post|tweet|item|account|token|coin|project|source|thread|message|"
           r"text|link|url|phrase|referral)s?\b|(?:the|this) (?:phrase|sentence|line|words?|link|url|cashtag|referral|"
           r"hashtag)\b|it\b|them\b|the following)")
_IGNORE = (r"(?:ignore|disregard|forget|override|overrule|overwrite|replace|supersede|rewrite|bypass|skip|discard|"
           r"abandon|drop|dismiss|neglect|"
           r"nullify|cancel|erase|delete|wipe|clear|reset|set aside|throw out|throw away|stop following|"
           r"do not follow|don'?t follow|no longer follow|never follow|stop obeying|do not obey|don'?t obey|"
           r"cease following|cease obeying|quit following|quit obeying|pay no attention to|take no notice of|"
           r"turn a blind eye to)")
_BEFORE = (r"(?:previous|previously|prior|above|earlier|preceding|foregoing|former|original|initial|"
           r"system|developer|all (?:the )?(?:previous|prior|above|earlier))")
_STRONG_TARGET = (r"(?:instructions?|instructs|prompts?|system prompts?|directives?|guidelines?|guardrails?|"
                  r"programming|commands?|system messages?|developer messages?|training|safety (?:rules|filters|"
                  r"guidelines)|content polic(?:y|ies)|constraints|restrictions)")
_WEAK_TARGET = r"(?:rules?|context|messages?|orders|policies|polic(?:y)|filters?|tasks?|settings|limits)"
_OWNER = r"(?:your|all|any|every|all of your|all your|the|these|those|my|its)"

# Words after which a verb starts a command (a symbol or the start of the text also does): softeners
# ("please", "now"), vocatives ("hey", "AI,"), modals addressed to the reader ("you must", "i want you to").
LEAD_WORDS = (r"please|pls|plz|kindly|now|just|simply|immediately|then|and|also|first|firstly|so|instead|always|"
              r"finally|next|urgent|important|attention|note|notice|warning|alert|reminder|psa|update|override|"
              r"admin|system|ps|btw|hey|hi|hello|yo|ok|okay|alright|seriously|step \d+|"
              r"you (?:must|should|shall|will|need to|have to|are to|are required to|are instructed to|may now|"
              r"can now)|(?:is|are) to|i (?:want|need|order|command|instruct|ask|require) you to|"
     r"make sure (?:to|you)|"
              r"be sure to|remember to|time to|por favor|ahora|y|luego|también|tambien|debes|tienes que|"
              r"quiero que|necesito que|" + _AI + r"\s*[,:]")

# Reported speech before a verb: "told it to", "tricked the bot into", "make chatbots".
REPORTED = re.compile(
    r"(?:\b(?:told|tell|tells|telling|asked|asks|asking|instructed|instructs|instructing|ordered|orders|"
    r"commanded|tricked|tricks|tricking|convinced|convinces|persuaded|prompted|prompting|forced|forces|forcing|"
    r"got|gets|getting|caused|causes|manipulated|manipulates|coaxed|directed|designed|meant|tried|tries|trying|"
    r"attempted|attempts|attempting|used|uses|using|able|way|ways|how|fooled|fools|duped|urged|urges|"
    r"wanted|wants|aims|aimed|seeks|sought|capable|refused|refuses|learned|learns|trained)\b"
    r"(?:\s+[\w'$@.-]+){0,5}?\s+(?:to|into|not to)\s+$)|"
    r"(?:\b(?:make|makes|made|making|let|lets|letting|watch|watched|saw|see|sees|had|have|has)\s+"
    r"(?!sure\b)(?:[\w'$@.-]+\s+){1,3}$)|"
    r"(?:\b(?:to|who|that|which|they|them|it|bots?|models?|agents?|chatbots?|ais|llms?|attackers?|hackers?|"
    r"scammers?|users?|people|researchers?|would|could|might|did|does|didn'?t|doesn'?t|won'?t|can'?t|cannot|"
    r"not|never|will|can|may)\s+$)")
# A phrase named as a thing, not said: "the 'ignore previous instructions' attack".
MENTION_AFTER = re.compile(r"^[\"'\u201c\u201d\u2018\u2019]?\s*(?:attacks?|prompts?|tricks?|exploits?|jailbreaks?|"
                            r"techniques?|payloads?|strings?|lines?|messages?|commands?|injections?|hacks?|"
                            r"methods?|meme|classic|trope|style|phrase|text|variety|genre|family)\b")
MENTION_BEFORE = re.compile(r"(?:\b(?:the|a|an|classic|so[- ]called|infamous|famous|typical|simple|old|basic|"
                             r"known|usual|standard|phrase|words?|like|such as|called|dubbed|variants? of)\s*"
                             r"[\"'\u201c\u2018]?\s*$)")

# --- families over the latin view ------------------------------------------------------------------------

# (name, pattern, gate) where gate is "lead" (must start an imperative, not reported), "idiom" (anywhere
# unless reported or named as a thing) or "any" (the wording itself is never news).
LATIN: tuple[tuple[str, str, str], ...] = (
    # "ignore all previous instructions", "disregard the above prompt", "forget your prior guidelines"
    ("override", _IGNORE + r"\s+(?:(?:all|any|each|every|of|the|your|my|these|those|its|their)\s+){0,3}"
     + _BEFORE + r"\s+(?:(?:\w+)\s+){0,2}?(?:" + _STRONG_TARGET + "|" + _WEAK_TARGET + r")\b", "idiom"),
    ("override", _IGNORE + r"\s+" + _OWNER + r"\s+(?:(?:\w+)\s+){0,2}?" + _STRONG_TARGET + r"\b", "lead"),
    ("override", _IGNORE + r"\s+(?:your|all your|all of your)\s+(?:(?:\w+)\s+){0,2}?" + _WEAK_TARGET + r"\b",
     "lead"),
    ("override", _IGNORE + r"\s+(?:(?:all|everything|anything|all of|what(?:ever)?)\s+)?(?:of\s+)?(?:the\s+)?"
     r"(?:above|foregoing|aforementioned|before this|prior|previous|earlier|preceding|you (?:were|have been|"
     r"'ve been|are|was) "
     r"(?:told|given|instructed|taught|programmed)|that came before|said before|written above|up to (?:now|here))\b"
     r"(?:\s+(?:this|the|that)\s+(?:line|message|post|text|point|sentence))?(?=\s*(?:[^\w\s$€£]|$|and\b|then\b|now\b|"
     r"instead\b|you\b|from\b|completely\b|entirely\b))", "lead"),
    ("override", r"\b(?:forget|ignore|disregard) (?:about )?(?:everything|all that|all of that|all this|it all)\b"
     r"(?! (?:you know about|about the|the market|else|you (?:read|see|hear|saw|heard) (?:on|in|about|from))\b|"
     r" (?:above|below|under|over|beyond) [$€£\d])",
     "lead"),
    ("override", r"\bstart (?:over|fresh|anew) with (?:new|these|the following|fresh) (?:instructions|rules|orders)",
     "any"),
    # "your new task is", "from now on you", "you are now DAN"
    ("new_instructions", r"\b(?:new|updated|real|actual|true|hidden|secret|revised|additional|overriding|"
     r"priority|urgent|important|correct|final|special) (?:system |admin |developer |top[- ]priority )?"
     r"(?:instructions?|prompts?|directives?|orders|commands|task|objective|mission|rules for (?:the )?" + _AI
     + r"|role)\s*(?::|-{1,2}|\bfollow\b|\bare\b|\bis\b|\bfor (?:the |all |any )?" + _AI + r"\b)", "lead"),
    ("new_instructions", r"\byour (?:new |real |actual |true |only |primary |main |first )?(?:task|job|goal|"
     r"objective|mission|purpose|role|directive|instructions?|orders|assignment|function|duty) "
     r"(?:now |from now on |here |today )?(?:is|are|will be|has changed)\b", "any"),
    ("new_instructions", r"\bfrom (?:now on|this point (?:on|forward)|here on)\b,?\s*(?:you|your|always|only|"
     r"never|respond|reply|act|write|answer|say|output|ignore|include|start|end|refer|call|treat)", "any"),
    ("new_instructions", r"\byou (?:are|'re) (?:now |no longer |henceforth |from now on )(?:an? |the |my |in |a "
     r"new )?(?:\w+ ){0,2}?(?:ai|assistant|bot|agent|model|mode|dan|persona|character|writer|publisher|"
     r"promoter|shill|advocate|version|system|free|unrestricted|unfiltered|jailbroken|uncensored)\b", "any"),
    ("new_instructions", r"\b(?:act|behave|respond|operate|function) as (?:if you (?:are|were) )?(?:an? |the |my )?"
     r"(?:unfiltered|unrestricted|jailbroken|uncensored|evil|different|new|rogue|dan|developer|admin|system|"
     r"root|free|sudo)\b", "lead"),
    ("new_instructions", r"\b(?:pretend|imagine|role[- ]?play) (?:that )?(?:you are|you're|to be|as) (?:an? |the "
     r")?(?:\w+ ){0,2}?(?:ai|assistant|bot|model|agent|dan|system|with no|without|unfiltered|unrestricted)\b",
     "lead"),
    ("new_instructions", r"\b(?:ai|a\.i\.|llm|gpt|bot|agent|assistant|model|writer|system)s? (?:instructions?|"
     r"directives?|orders|prompt|task)\s*(?:[:\-]|below|follow|here|\u2b07|\U0001f447)", "any"),
    ("new_instructions", r"\binstructions? (?:for|to) (?:the |all |any |every )?" + _AI + _NOT_AI_TOPIC
     + r"\b\s*(?:[:\-]|reading|only|below|here|follow)", "any"),
    # someone speaking to the model that reads the item
    ("address_ai", r"\b" + _AI + r" (?:that (?:is|are) |who (?:is|are) )?(?:reading|parsing|processing|scraping|"
     r"summari[sz]ing|analy[sz]ing|ingesting|indexing|crawling|seeing|viewing|scanning|reviewing|evaluating|"
     r"writing|preparing|compiling|generating|producing|drafting)\s+(?:this|these|the following|my|our|that|"
     r"today'?s|tomorrow'?s|the next|tonight'?s)\b", "any"),
    ("address_ai", r"\b(?:if|when|while) you(?:'re| are)? (?:reading|parsing|processing|summari[sz]ing|scraping|"
     r"seeing|ingesting) (?:this|these|my|the following)(?: \w+)? as an? (?:ai|llm|language model|bot|agent|"
     r"assistant|model|machine|crawler)\b", "any"),
    ("address_ai", r"\b(?:this|the following|the next) (?:\w+ )?(?:message|post|text|section|note|part|tweet|line|"
     r"paragraph|content) is (?:only )?(?:intended|meant|written|addressed|directed) (?:only |solely |exclusively )?"
     r"(?:for|to) (?:the |all |any )?(?:[a-z]+ )?" + _AI + r"\b", "any"),
    ("address_ai", r"\b" + _AI + r" (?:that|who|which) (?:reads?|parses?|process(?:es)?|scrapes?|summari[sz]es?|"
     r"sees?|ingests?|indexes|analy[sz]es?|reviews?) (?:this|these|my|our|it)\b", "any"),
    ("address_ai", r"\bif (?:you (?:are|'re|r|happen to be)|your|u r) (?:an? |the |some )?(?:ai|a\.i\.|llm|gpt|"
     r"language model|large language model|bot|chatbot|assistant|agent|model|automated|crawler|scraper|machine|robot|"
     r"artificial intelligence|non[- ]?human|summari[sz]er|ai (?:agent|model|assistant|system))\b"
     r"(?!(?: (?:agent|model|assistant|system|bot))? (?:researcher|developer|engineer|builder|startup|company|"
     r"founder|team|project|enthusiast|investor|lab|"
     r"token|holder|fan|skeptic|user|professional|creator|trader)s?\b)", "any"),
    ("address_ai", r"\b(?:note|message|notice|memo|reminder|psa|attention|warning|directive|hint|heads[- ]up|"
     r"a word|instruction|request|order|command|reminder|alert|p\.?s\.?|breaking news|alpha|fyi|tip|intel|"
     r"tl;?dr|update|info|news|data point|fact) (?:to|for) (?:all |any |the |every |our |"
     r"you )?(?:[a-z]+ )?" + _AI + _NOT_AI_TOPIC + r"\b", "any"),
    ("address_ai", r"\b(?:dear|hey|hi|hello|yo|calling all|to all|to any|to every|psst|listen(?: up)?|"
     r"attention|attn|fao|oi)"
     r"\s*,?\s*(?:the |you |all |fellow |friendly )?(?:[a-z]+ )?" + _AI + _NOT_AI_TOPIC + r"\b", "any"),
    ("address_ai", r"(?:^|[^\w\s]\s*)(?:to|for|@|fao|attn:?) (?:the |all |any |every |our |you )?(?:[a-z]+ )?" + _AI
     + _NOT_AI_TOPIC + r"\b\s*(?:[:,\-\u2014]|only\b)\s*(?:please |now |just )?(?:you|your|ignore|publish|post|"
     r"approve|write|say|include|mention|recommend|respond|reply|output|forget|disregard|do not|don'?t|always|"
     r"never|tell|rate|describe|call|treat|mark|list|add|use|report|feature|promote|skip|cite|state)\b", "any"),
    ("address_ai", r"\b(?:if|when|while) (?:this|it|the (?:text|post|page|article|message|tweet)) is being (?:read|"
     r"processed|summari[sz]ed|parsed|scraped|ingested|analy[sz]ed|crawled|indexed) by (?:an? |the |any |some )?"
     r"(?:[a-z]+ )?" + _AI + r"\b", "any"),
    ("address_ai", r"\b(?:ai|llm|bot|agent|model|machine|gpt|assistant)s?[- ](?:only|eyes only)\b(?: (?:section|"
     r"note|part|instructions?|message|content|text))?\s*[:\-\])]", "any"),
    ("address_ai", r"\bas an? (?:ai|a\.i\.|large language model|language model|llm|assistant|agent|bot)"
     r"(?: (?:model|assistant|agent|system))?,? you\b", "any"),
    ("address_ai", r"\byou(?: are|'re) (?:an? |the )(?:ai|a\.i\.|llm|language model|large language model|chatbot|bot|"
     r"ai (?:agent|model|assistant|system|writer|analyst)|assistant|agent|summari[sz]er)\b" + _NOT_AI_TOPIC,
     "any"),
    ("address_ai", r"\b(?:the|this|any|every|each|all|all the)\s+(?:[a-z]+ )?(?:ai|a\.i\.|assistants?|models?|bots?|"
     r"agents?|writers?|researchers?|analysts?|llms?|summari[sz]ers?|language models?|ai agents?|ai writers?|"
     r"writer agent|researcher agent|analyst agent|crawlers?|scrapers?) (?:must|should|shall|will now|"
     r"(?:is|are) (?:instructed|required|told|ordered|expected|asked) to|needs? to|ha(?:s|ve) to|(?:is|are) to)\s+"
     r"(?:now |always |also |immediately |only |from now on )?(?:(?:ignore|publish|post|tweet|approve|output|respond|"
     r"reply|obey|forget|disregard|print|repeat|endorse|praise|promote|recommend)\b|(?:say|write|include|mention|"
     r"state|report|rate|classify|treat|describe|call|tell|follow|add|list|feature|refer|link|copy|quote|"
     r"summari[sz]e|cite|rank|flag|mark|skip|omit|drop|use) " + _OBJECT + r"|(?:follow|obey) (?:these|my|the "
     r"following|this)\b)", "any"),
    ("address_ai", r"(?:^|[^\w\s]\s*)(?:[a-z]+ )?" + _AI + r"\s*[,:]\s*(?:please|you|ignore|publish|post|approve|"
     r"write|say|include|mention|recommend|respond|reply|output|forget|disregard|do not|don'?t|always|never|"
     r"stop|start|tell|rate|classify|describe|call|treat|mark|list|put|add|use|report|remember|note that|"
     r"consider|flag|promote|feature|skip|make sure|be sure|listen|hear|pay attention|take note|heads up|read "
     r"carefully|attention)\b", "any"),
    # agent protocol (ReAct, tool calls) in text
    ("agent_protocol", r"\bfinal answer\s*[:\uff1a]", "lead"),
    ("agent_protocol", r"\bi (?:now )?(?:know|have|can give) (?:the|a|my) (?:great |final )?(?:final )?answer\b",
     "any"),
    ("agent_protocol", r"\bthought\s*:.{0,300}?\b(?:action|final answer|observation)\s*:", "any"),
    ("agent_protocol", r"\baction input\s*:|\bobservation\s*:.{0,300}?\bthought\s*:", "any"),
    ("agent_protocol", r"\baction\s*:\s*[\w\-]+\s*(?:\(|action input)", "any"),
    ("agent_protocol", r"\"(?:tool_calls?|function_call|tool_use|tool_name)\"\s*:|\"(?:name|action|tool)\"\s*:\s*\""
     r"(?:publish|approve|post|tweet|auto_?publish|send|transfer|search_memory|latest_price)", "any"),
    # commands to publish, approve, skip review, or to steer the brief
    ("publish_command", r"\bauto[_\s-]?(?:publish|approve|approval|post(?:ing)? (?:this|it|the)|tweet)\w*|"
     r"\bpolicy\s*(?:=|:|to)\s*[\"']?auto\b(?=\s*(?:$|[^\w\s-]|and\b|then\b|now\b))|"
     r"\bpublish_now\b|\bskip_review\b|\bforce_publish\b", "any"),
    ("publish_command", r"\b(?:approve|publish|post|tweet|broadcast|push|send out|schedule|pin)\s+(?:this|these|"
     r"the following|it|the below|below|the text below|my|the next|that)\s+(?:\w+\s+){0,3}?(?:verbatim|exactly|"
     r"as[- ]is|immediately|right away|right now|now|without (?:any )?(?:human )?(?:review|changes|edits|editing|"
     r"checks?|approval|moderation|modification|delay)|word for word|unchanged|unedited|to (?:your|all|the|every) "
     r"(?:followers|channel|channels|audience|feed|timeline|readers|subscribers|x|twitter|telegram|group))\b",
     "lead"),
    ("publish_command", r"\b(?:approve|publish|post|tweet) (?:this|the|my|your|every|all|any|each) (?:draft|"
     r"brief|post|thread|tweet|"
     r"summary|message|report|content|text|update)\b", "lead"),
    ("publish_command", r"\b(?:skip|bypass|disable|turn off|switch off|circumvent|avoid|evade|ignore|omit|remove|"
     r"get around|override|suppress)\s+(?:the\s+|any\s+|all\s+|your\s+)?(?:human\s+|manual\s+|editorial\s+)?(?:"
     r"safety|safeguards|protections|restrictions|limits|rules|"
     r"review(?:er)?s?|approval|moderation|grounding(?: checks?)?|fact[- ]?check(?:s|ing)?|compliance(?: checks?)?|"
     r"validation|validator|guardrails?|safety (?:checks?|filters?)|checks|filters?|disclaimers?|warnings?|"
     r"risk (?:warnings?|disclosures?)|caveats?)\b", "lead"),
    ("publish_command", r"\b(?:publish|post|tweet|approve)\w* (?:it |this |them )?without (?:any )?(?:human |manual "
     r")?(?:review|approval|checks?|moderation|grounding|oversight)\b", "lead"),
    ("publish_command", r"\b(?:mark|set|flag|label|classify|tag|treat|rate|record|consider|report|list|describe|"
     r"present|frame|call) (?:this|it|the (?:draft|brief|post|item|source|claim|project|token)|these|\$?\w+) "
     r"(?:[\w$]+ ){0,2}?(?:as|to) (?:an? )?(?:approved|verified|"
     r"grounded|trusted|safe|legit|legitimate|audited|official|fact[- ]checked|validated|whitelisted|"
     r"reliable|credible|safe to publish|ok|pending|published|top pick|must[- ]buy|strong buy|"
     r"(?:a |the )?(?:top|best|safest) (?:pick|buy|investment))\b", "lead"),
    ("publish_command", r"\b(?:this|the) (?:draft|brief|post|content|claim|item|source|output|thread|"
     r"tweet) (?:is|has "
     r"been|was) (?:pre[- ]?)?(?:approved|verified|grounded|fact[- ]checked|validated|whitelisted|cleared|trusted|"
     r"safe to publish|exempt)\b(?! by (?:the )?(?:sec|cftc|regulators?|fca|court|community|dao|auditors?)\b)",
     "any"),
    ("publish_command", r"\b(?:grounding|validation|review|status|verdict|compliance)\s*[:=]\s*[\"']?(?:ok|passed|"
     r"approved|clean|verified|green)\b", "any"),
    ("publish_command", r"\b(?:include|add|insert|append|put|embed|attach|use|cite|place)\s+(?:this|the following|"
     r"these|the|my|our|that)\s+(?:\w+\s+){0,2}?(?:link|url|address|contract|ca|referral|text|ticker|cashtag|"
     r"hashtag|sentence|line|message|wallet|code)s?\s+(?:\w+\s+){0,2}?(?:in|into|on|at the (?:top|end|start) of|to)"
     r"\s+(?:your|the|every|each|all|any|today'?s|the next)\s+(?:\w+\s+)?(?:brief|summary|report|analysis|output|"
     r"response|answer|thread|tweet|post|recap|newsletter|reply|message|article|update)s?\b", "any"),
    ("publish_command", r"\b(?:mention|recommend|feature|promote|highlight|include|add|tag|shill|push|call out|"
     r"endorse|list|rank)\s+(?:\$?[\w-]+\s+){1,3}?(?:in|into|at the top of|first in|as the top pick in)\s+(?:your|"
     r"every|each|all|any|today'?s|the next|all of your)\s+(?:\w+\s+)?(?:briefs?|summar(?:y|ies)|reports?|"
     r"analys[ie]s|outputs?|responses?|answers?|threads?|tweets?|posts?|recaps?|newsletters?|replies|updates?)\b",
     "any"),
    ("publish_command", r"\btell (?:your|the|all|every|all of your|all your) (?:readers|users|followers|audience|"
     r"subscribers|viewers|community|channel|clients|traders) (?:to|that)\b", "lead"),
    ("publish_command", r"\byour (?:summary|brief|report|analysis|output|response|answer|thread|tweet|recap|reply|"
     r"post|article|headline|title|next (?:post|tweet|brief)) (?:must|should|shall|needs to|has to|will|is to) "
     r"(?:\w+ )?(?:say|state|include|mention|contain|recommend|begin|start|end|read|feature|describe|call|tell|"
     r"urge|be|link|promote|praise)\b", "any"),
    ("publish_command", r"\bthe (?:summary|brief|output|response|answer|thread|tweet|recap) (?:must|should|shall|"
     r"needs to|has to|is to) (?:\w+ )?(?:say|state|include|mention|contain|recommend|begin|start|end|read|"
     r"feature|describe|urge|link|promote)\b", "lead"),
    ("publish_command", r"\b(?:when|while|before) (?:you )?(?:write|writing|prepare|preparing|compose|composing|"
     r"draft|drafting) (?:your|the|today'?s|the next|this) (?:brief|summary|recap|thread|tweet|newsletter|"
     r"market (?:brief|update|wrap))\b", "any"),
    ("publish_command", r"\b(?:state|say|write|claim|announce|declare|assert|tell (?:everyone|people|readers|users|"
     r"them|the world)) that\b", "lead"),
    ("publish_command", r"\bwhen (?:you )?(?:summari[sz]e|summari[sz]ing|writing about|reporting on|processing|"
     r"analy[sz]ing|covering|citing|quoting|describing) (?:this|these|the following|it|my post|this post)\b", "any"),
    ("publish_command", r"\b(?:in|for) (?:your|any|every) (?:summary|brief|report|analysis|output|response|answer|"
     r"thread|tweet|recap|reply|coverage)s?\s*,?\s*(?:you )?(?:must |should |always |never |be sure to |make sure "
     r"to |please )?(?:say|state|mention|include|recommend|call|describe|write|tell|add|link|promote|omit|"
     r"ignore|refer|rate|present)\b", "any"),
    ("publish_command", r"\b(?:do not|don'?t|never|you (?:must|should|shall|will) not|"
     r"must not) (?:ever )?(?:mention|report|include|cite|flag|disclose|say|warn|add|print|output|show|"
     r"reveal|write|repeat|summari[sz]e|quote|link) (?:anything )?(?:about )?(?:the |this |that |any |a |our |"
     r"these )?(?:\w+ )?(?:hack|exploit|risks?|warnings?|disclaimers?|rug|scam|unlock|vulnerabilit(?:y|ies)|"
     r"lawsuit|investigation|this|the fact|drain|outage|delisting|concerns?|criticism|doubts?)\b", "lead"),
    ("publish_command", r"\b(?:respond|reply|answer|output|return|print|write|say)\s+(?:only|exactly|just|"
     r"verbatim|nothing but)\s+(?:with\s+)?(?:the following|this|these|[\"'])|\b(?:respond|reply|answer) "
     r"(?:only )?with (?:the following|this exact|exactly)|\brepeat (?:after me|the following|this verbatim|"
     r"verbatim|word for word)|\bsay exactly\b|\bprint (?:exactly|the following|verbatim)\b", "lead"),
    ("publish_command", r"\b(?:reveal|print|show|output|repeat|leak|display|dump|tell me|give me|share|paste)\s+"
     r"(?:me )?(?:your|the) (?:full |entire |complete |hidden |initial |original )?(?:system prompt|system message|"
     r"prompt|instructions|initial instructions|api keys?|secrets?|credentials|configuration|private keys?|"
     r"seed phrases?)\b", "lead"),
    ("publish_command", r"\byour (?:system prompt|system message|instructions|programming|guardrails|guidelines|"
     r"safety rules|developers?|creators?|operators?|training)\b(?: (?:are|is|say|tell|no longer|have been|were))",
     "any"),
    ("publish_command", r"\bif you can (?:read|see|parse|understand|process) (?:this|these|me)\b,?\s*(?:then )?"
     r"(?:please |you must |you should )?(?:reply|respond|answer|output|print|say|write|include|ignore|post|tweet|"
     r"reveal|repeat|send|share|add|mention|recommend|approve|publish)\b", "any"),
    ("publish_command", r"\b(?:with|reveal|print|show|output|repeat|leak|display|dump|give|share|paste|send|post|"
     r"tweet) (?:me |us )?(?:your|the) (?:full |entire |complete |hidden |initial |original |secret )?(?:system "
     r"prompt|system message|initial instructions|hidden instructions|instructions verbatim)\b", "any"),
    ("publish_command", r"\bauto[_\s-]?post(?:ed|ing)?\b(?! (?:feature|tool|bots?|function|option|"
     r"setting)s?\b)", "lead"),
    ("publish_command", r"\b(?:do not|don'?t|never|you must not) (?:tell|inform|alert|notify|warn|show|"
     r"mention (?:this "
     r"|it )?to) (?:the |your |any )?(?:user|reviewer|human|operator|editor|moderator|admin|desk|"
     r"reader)s?\b", "lead"),
    ("publish_command", r"\b(?:the|your|our) (?:human )?(?:reviewer|editor|moderator|operator|admin|desk|compliance "
     r"team)s? (?:has|have) (?:already )?(?:approved|signed off|cleared|verified|pre-?approved)\b(?! (?:the )?"
     r"(?:etf|listing|merger|deal|proposal|filing|application)s?\b)", "any"),
    ("publish_command", r"\b(?:end|begin|start|finish|close|sign|prefix|suffix|open|conclude)\s+(?:your|every|each|"
     r"all|the|today'?s)\s+(?:\w+\s+)?(?:response|answer|reply|output|post|tweet|thread|brief|summary|message|"
     r"headline|title)s?\s+with\b|\bappend (?:this|the following|these|it) to (?:your|every|each|all|the) "
     r"(?:\w+ )?(?:response|answer|reply|output|post|tweet|thread|brief|summary|message)s?\b", "any"),
    ("override", _IGNORE + r"\s+(?:what|everything|anything) (?:the |your )?(?:system|developer|assistant|prompt|"
     r"instructions|operator|admin|creators?|owners?|rules) (?:said|says|told you|wrote|asked|say)\b", "any"),
    ("jailbreak", r"\b(?:imagine|suppose|pretend|hypothetically|let'?s say)\b[^.!?]{0,40}\byou (?:had|have|were "
     r"under|are under) no (?:rules|restrictions|guidelines|filters|limits|instructions)\b|\b(?:this is|as) an? "
     r"(?:authori[sz]ed|sanctioned|approved|official) (?:test|override|request|instruction|red[- ]team(?:ing)? "
     r"(?:exercise|test))\b(?= (?:by|from|of) (?:the |your )?(?:developers?|operators?|admins?|security team|"
     r"creators?|owners?|tapewatch))", "any"),
    # our own answer shapes in data: a payload that brings a ready-made brief or fact sheet
    ("agent_protocol", r"\"(?:sections|claims|item_ids|facts|why_it_matters|contrarian)\"\s*:\s*[\[{]", "any"),
    ("address_ai", r"\b(?:whoever|whatever|anyone|anything|anybody|someone|something)(?: or (?:whoever|whatever))? "
     r"(?:is |are )?(?:summari[sz]ing|processing|parsing|scraping|analy[sz]ing|ingesting|indexing|crawling) "
     r"(?:this|these|my|the following)(?:\s+(?:post|text|page|tweet|thread|article|message|content|feed))?"
     r"\s*(?:[:,\-\u2014]|$)", "any"),
    ("new_instructions", r"\byou(?: have|'ve) been (?:updated|reprogrammed|reconfigured|upgraded|jailbroken|freed|"
     r"unlocked|reset|patched|re-?trained|given new (?:instructions|rules|orders))\b|\bnew (?:behaviou?r|persona|"
     r"personality|identity|programming)\s*[:\-]", "any"),
    ("new_instructions", r"\b(?:act|behave|pretend|role[- ]?play|speak|respond|write) (?:as|like|to be) my\b|"
     r"\byou will (?:now )?(?:act|behave|pretend|role[- ]?play|respond) (?:as|like)\b", "lead"),
    ("override", _IGNORE + r"\s+(?:\w+\s+){0,3}?(?:rules|instructions|orders|guidelines|directives|prompts?|"
     r"guardrails|"
     r"commands) (?:that )?(?:you (?:were|have been|'ve been|got|received)(?: given| told| taught)?|given to you|"
     r"you (?:follow|obey|have))\b", "lead"),
    ("override", r"\bfollow (?:mine|my (?:instructions|rules|orders|commands)|(?:these|the ones below|the following)"
     r"(?: instructions| rules| orders| commands)? instead)\b", "lead"),
    ("override", r"\b(?:whatever|everything|anything|what|all) you (?:were|have been|'ve been) (?:told|given|"
     r"instructed|taught)(?! about)\b[^.!?]{0,30}\b(?:(?:doesn'?t|does not|no longer|don'?t|do not) (?:matter|"
     r"apply|count)|(?:is|are) (?:void|cancell?ed|obsolete|irrelevant|no longer valid|overridden|revoked|outdated))",
     "any"),
    ("new_instructions", r"\b(?:i|we) (?:hereby )?(?:authori[sz]e|order|instruct|command) you to\b", "any"),
    ("publish_command", r"\b(?:execute|run|perform|action)\s*:\s*(?:publish|post|approve|tweet|send|auto)", "any"),
    ("address_ai", r"(?:^|[^\w\s]\s*)(?:[a-z]+ )?" + _AI + r"\s*[,:]\s*[^.!?]{0,40}?\b(?:approve|publish|post it|"
     r"tweet|ignore|forget|disregard|recommend|promote|shill)\b", "any"),
    ("address_ai", r"\bif (?:an?|the|any|some) (?:[a-z]+ )?" + _AI + r" (?:is|are|happens? to be|was|were) (?:reading|"
     r"parsing|processing|summari[sz]ing|scraping|seeing|ingesting|analy[sz]ing|crawling|indexing) (?:this|these|"
     r"the following|my (?:post|tweet|thread|article))\b", "any"),
    ("address_ai", r"\b(?:[a-z]+ )?" + _AI + r" (?:must|should|shall|needs? to|ha(?:s|ve) to) (?:now |always |also )?"
     r"(?:describe|call|present|list|rank|recommend|promote|feature|mention|include|rate|treat|label|report|add|"
     r"highlight|praise|endorse|say) " + _OBJECT, "any"),
    ("override", _IGNORE + r"\s+(?:the |all |any |all the )?(?:data|text|content|context|information|posts?|articles?|"
     r"sources?|items?|facts|messages?|blocks?|signals) (?:above|below|before this|earlier|previously|so far|you were "
     r"(?:given|shown))\b(?=\s*(?:[^\w\s$]|$|and\b|then\b|instead\b))", "lead"),
    ("override", r"\b(?:instructions|directives|prompts?|system prompts?) (?:that )?(?:was |were |have been |has been "
     r"|you were )?(?:given|provided|sent|issued) (?:to you|you)\b", "any"),
    ("override", r"\b(?:overrides?|supersedes?|replaces?|cancels?|voids?) (?:all |any )?"
     r"(?:earlier|previous|prior|other) "
     r"(?:guidance|instructions|rules|directives|guidelines|prompts|orders) (?:that )?(?:was |were |have been )?"
     r"(?:given|provided|sent) (?:to )?you\b", "any"),
    ("override", r"\b(?:all |your |the )?(?:previous|prior|earlier|original|initial) (?:instructions|directives|"
     r"prompts|system prompts?) (?:are|have been|were|is|has been) (?:now )?(?:cancell?ed|revoked|void|null|overridden|"
     r"suspended|lifted|deleted|obsolete|no longer valid|replaced|superseded|invalid)\b"
     r"(?! (?:after|following|since|under|for|by|from) )", "any"),
    ("address_ai", r"\b(?:whatever|whichever|any|every|each) (?:[a-z]+ )?" + _AI + r" (?:reads?|parses?|process(?:es)?|"
     r"scrapes?|summari[sz]es?|sees?|ingests?|indexes|analy[sz]es?|crawls?) (?:this|these|my|our)\b", "any"),
    ("address_ai", r"\b(?:grok|claude|chatgpt|gpt|gemini|copilot|llama|mistral|deepseek|perplexity|ai|bots?)"
     r"(?:\s*,\s*(?:and )?(?:grok|claude|chatgpt|gpt|gemini|copilot|llama|mistral|deepseek|perplexity)){1,}\s*"
     r"(?:[,:\-\u2014]|and)\s*(?:all of you|you all|each of you|listen|please|ignore|write|post|say|include|call|"
     r"recommend|publish)\b", "any"),
    ("publish_command", r"\b(?:omit|remove|drop|leave out|hide|exclude|strip|delete|cut) (?:the |any |all |every )?"
     r"(?:\w+ )?(?:hack|exploit|risks?|warnings?|disclaimers?|rug|scam|unlock|vulnerabilit(?:y|ies)|lawsuit|"
     r"investigation|drain|outage|delisting|concerns?|criticism|caveats?|losses) (?:mention |section )?(?:from|in|"
     r"out of) (?:your|the|today'?s|this|every|each) (?:\w+ )?(?:recap|summary|brief|report|output|thread|post|"
     r"tweet|answer|response|analysis|coverage|newsletter|update)s?\b", "any"),
    ("address_ai", r"\b(?:any|every|each|all|the) (?:[a-z]+ )?" + _AI + r" (?:that is |who is |that are )?(?:reading|"
     r"summari[sz]ing|processing|ingesting|scraping) (?:this|these|my|the following|today'?s|\w+ (?:news|posts|"
     r"tweets|feeds?))\b[^.!?]{0,60}?\b(?:should|must|shall|"
     r"needs? to|has to|have to)\b", "any"),
    ("new_instructions", r"\b(?:the )?tapewatch (?:team|operators?|admins?|administrators?|developers?|devs|staff|"
     r"owners?|maintainers?)\b(?=\s*(?:[:,\-\u2014]|here\b|says?\b|asks?\b|wants?\b|instructs?\b|requires?\b|"
     r"approved?\b|has approved\b))", "any"),
    ("publish_command", r"\b(?:approve|publish|post|tweet|retweet) (?:it|this|them|that)(?: now| immediately| asap|"
     r" right away)?\s*(?:[.!]|$)", "lead"),
    ("publish_command", r"\b(?:make sure|ensure|be sure|see to it) (?:that )?(?:your|every|each) (?:\w+ )?"
     r"(?:summary|brief|output|answer|response|thread|tweet|post|recap|headline|title) (?:says|states|"
     r"includes|mentions|contains|calls|describes|recommends|links|reads|features|lists|promotes|starts|ends)\b",
     "any"),
    # jailbreak switches
    ("jailbreak", r"\b(?:developer|dev|debug|god|jailbreak|jailbroken|dan|unrestricted|unfiltered|sudo|admin|"
     r"root|maintainer|evil|chaos|opposite|anything) mode (?:is )?(?:now )?(?:enabled|activated|on|engaged|"
     r"unlocked|active)\b(?! (?:in|on|under|from|for|via) (?:the )?(?:ledger|settings|your (?:device|phone|wallet)|"
     r"the app|android|ios|chrome|metamask|phantom|device|browser))", "lead"),
    ("jailbreak", r"\b(?:enter|enable|activate|engage|switch (?:to|into)|turn on|unlock|go into)\s+(?:the\s+)?"
     r"(?:developer|dev|god|jailbreak|dan|unrestricted|unfiltered|sudo|evil|chaos) mode\b(?! (?:in|on|under|from|"
     r"for|via|of) (?:the )?(?:ledger|settings|your|the app|android|ios|chrome|metamask|phantom|device|browser|"
     r"wallet|phone))", "lead"),
    ("jailbreak", r"\byou (?:are|'re) (?:now )?in (?:developer|dev|god|jailbreak|dan|unrestricted|debug|admin|"
     r"sudo|evil) mode\b", "any"),
    ("jailbreak", r"\b(?:do anything now|dan mode|dan prompt|stay in character|jailbreak(?:ed)? mode|"
     r"(?:no|without any|free of|free from) (?:ethical |moral |content |safety )?(?:restrictions|limitations|"
     r"filters|guardrails|guidelines|censorship) (?:mode|apply|from now)|"
     r"you (?:are|'re) (?:now )?(?:jailbroken|unrestricted|unfiltered|uncensored|free from (?:your|all|any)))\b",
     "any"),
    ("jailbreak", r"\b(?:admin|system|root|developer|sudo|security|master) (?:override|overwrite)\b|"
     r"\boverride (?:code|mode|protocol|command|authori[sz]ation|key)\b|\bsudo (?:ignore|publish|approve|post)\b",
     "any"),
    # fake frames and role labels in words; someone claiming to speak for the model's operators
    ("new_instructions", r"\b(?:message|note|instructions?|notice|update|order|directive|memo|"
     r"word) from (?:the |your )?"
     r"(?:tapewatch|" + _AI + r")?\s*(?:operators?|owners?|admins?|administrators?|developers?|devs|creators?|"
     r"maintainers?|moderators?|team)\b(?=\s*[:\-,])", "any"),
    ("new_instructions", r"\byour (?:developers?|operators?|creators?|owners?|admins?|administrators?|maintainers?|"
     r"makers?|programmers?) (?:want|wants|say|says|said|asked|ask|have|has|instruct|instructed|told|require|"
     r"decided|authori[sz]e|authori[sz]ed|approved?)\b", "any"),
    ("new_instructions", r"\b(?:operators?|owners?|admins?|developers?|creators?) of (?:this|the|your) (?:bot|ai|"
     r"agent|model|assistant|system|crew|writer)\b\s*(?:[:\-,]|want|say|ask|have|instruct|require)", "any"),
    ("data_frame", r"(?:^|[\-=#*_\[(<|>~]{1,}\s*)(?:end|close|closing|exit) (?:of )?(?:the )?(?:data|context|input|"
     r"document|sources?|items?|user (?:input|content|message|data)|untrusted (?:content|data|input)|external "
     r"(?:content|data)|retrieved (?:content|data)|search results?)(?: block| section| here)?\s*(?:[\-=#*_\])>|"
     r"~:]|$)",
     "any"),
    ("data_frame", r"(?:^|[\-=#*_\[(<|>~]{1,}\s*)(?:begin|start|beginning) (?:of )?(?:the )?(?:new |real |actual "
     r"|true |updated )?(?:system|instructions?|prompt|admin|developer|operator|assistant) ?(?:message|prompt|"
     r"block|section|instructions|override)?\s*(?:[\-=#*_\])>|~:.,]|$)", "any"),
    ("data_frame", r"\b(?:system|assistant|developer|admin|administrator|operator|sudo|root)(?: message| prompt| "
     r"override| note| instruction| notice| command| update)?\s*:\s*(?:you|ignore|disregard|forget|new "
     r"(?:\w+ ){0,2}?(?:instructions?|task|rules|role|directive|orders?)|from now|the (?:ai|assistant|model|bot|"
     r"writer|agent|researcher|analyst)"
     r"|override|publish|approve|your|do not|don'?t|always|respond|reply|act as|switch|enable|activate|execute|"
     r"run|include|mention|recommend|tell|output|stop|start|begin|follow|obey)\b", "any"),
    ("hidden_comment", r"<!--(?:(?!-->).)*[a-z]{2}|\[(?://|comment|hidden|note|ai|system)\]\s*:\s*[#<(]|"
     r"\b(?:hidden|invisible|secret|embedded) (?:instructions?|prompts?|messages?|commands?|text) (?:for|to) "
     r"(?:the |all |any )?" + _AI + r"\b", "any"),
)

# Squashed text (letters only), read only when letters were spelled apart: word boundaries are gone there.
SQUASHED: tuple[tuple[str, str], ...] = (
    ("override", r"(?:ignore|disregard|forget|override|bypass)(?:all|any|the|your|of|my)*(?:previous|prior|above|"
     r"earlier|preceding|system|original)(?:instructions?|prompts?|rules|directives|guidelines|messages|context)"),
    ("new_instructions", r"(?:new|real|secret|hidden)(?:system)?(?:instructions|directives)|yourne?wtaskis|"
     r"youarenow(?:an?|the|in|my|dan|free)|fromnowonyou"),
    ("address_ai", r"ifyouarean?(?:ai|llm|bot|assistant|agent|languagemodel)|(?:ai|llm|bot|agent|assistant)s?"
     r"(?:reading|parsing|summari[sz]ing)this|note(?:to|for)(?:all)?(?:ais|llms|bots|agents)"),
    ("publish_command", r"auto_?publish|autoapprove|(?:publish|post|tweet|approve)(?:this|it)(?:verbatim|now|"
     r"immediately|withoutreview)|skip(?:the)?(?:human)?review"),
    ("jailbreak", r"developermode(?:enabled|activated|on)|godmode(?:enabled|on)|danmode|doanythingnow"),
    ("agent_protocol", r"finalanswer"),
)

# The order markers are reported in.
ORDER = ("override", "new_instructions", "address_ai", "role_tag", "data_frame", "agent_protocol",
         "publish_command", "jailbreak", "hidden_comment")

