"""Instruction-to-an-AI wording in languages other than English, over the case-folded native view.

Same families and gates as ``sources.injection_patterns`` (Spanish and Portuguese imperatives look like
third-person verbs, so they must start a clause); these keep every script, so Cyrillic stays Cyrillic.
"""

from __future__ import annotations

NATIVE: tuple[tuple[str, str, str], ...] = (
    # Spanish / Portuguese
    ("override", r"\b(?:olvídate de|olvidate de|olvídense de|olvídese de|ignorar|olvidar|omitir|ignora|"
     r"ignore|ignoren|ignorad|olvida|olvide|olviden|olvidad|omite|omita|descarta|"
     r"desestima|desobedece|esqueça|esqueca|esquece|desconsidere|desconsidera|haz caso omiso (?:a|de)|"
     r"no sigas|no sigan|não siga|nao siga)\s+(?:\w+\s+){0,3}?(?:instrucciones|instrucción|instruccion|"
     r"indicaciones|órdenes|ordenes|directrices|reglas|normas|prompts?|instruções|instrucoes|regras|"
     r"comandos)\b", "lead"),
    ("new_instructions", r"\b(?:nuevas|nueva|novas|nova) (?:instrucciones|instrucción|instruções|órdenes|tarea|"
     r"regras|reglas)\s*[:\-]|\b(?:ahora|a partir de ahora) eres\b|\beres (?:ahora )?(?:una? )?(?:ia|asistente|"
     r"modelo de lenguaje|bot|agente)\b|\bvocê (?:agora )?é (?:uma? )?(?:ia|assistente|bot)\b|"
     r"\btu nueva tarea", "any"),
    ("address_ai", r"\bsi (?:eres|usted es) (?:una? )?(?:ia|inteligencia artificial|modelo(?: de lenguaje)?|bot|"
     r"asistente|agente|llm)\b|\bse você (?:é|for) (?:uma? )?(?:ia|inteligência artificial|modelo|bot|assistente)"
     r"\b|\b(?:nota|mensaje|aviso|atención) (?:para|a) (?:las |los |la |el |toda |todos )?(?:ias?|bots?|"
     r"agentes?|asistentes?|modelos?|llms?|inteligencias? artificiales?)\b(?! (?:de ia|tokens?|cripto))", "any"),
    ("publish_command", r"\b(?:publica|publique|publiquen|aprueba|aprueben|aprove|publicar) (?:esto|este "
     r"(?:texto|borrador|mensaje|post)|lo siguiente|isto|o seguinte)\b|\b(?:sin|sem) revisión humana|"
     r"\bsin (?:ninguna )?revisión\b.{0,30}\bpublica", "any"),
    ("override", r"\b(?:olvida|olvide|ignora|ignore|olvídate de|olvidate de|descarta|omite)\s+(?:todo\s+)?lo\s+"
     r"(?:anterior|de arriba|previo|que te (?:dijeron|han dicho|indicaron))", "lead"),
    ("override", r"\b(?:ignora|dimentica|ignorate|dimenticate|non seguire)\s+(?:\w+\s+){0,3}?(?:istruzioni|"
     r"indicazioni|regole|direttive)\b(?!\s+(?:della|del|dei|delle|degli|di)\b)", "lead"),
    # French / German / Italian, short forms
    ("override", r"\b(?:ignorez|ignore|oubliez|oublie)\s+(?:\w+\s+){0,3}?(?:instructions|consignes|règles)\s+"
     r"(?:précédentes|precedentes|antérieures|ci-dessus)|\b(?:ignoriere|ignorieren sie|vergiss|vergessen sie)\s+"
     r"(?:\w+\s+){0,3}?(?:anweisungen|befehle|regeln|vorgaben)\b|\b(?:ignora|dimentica)\s+(?:\w+\s+){0,3}?"
     r"(?:istruzioni|regole)\s+(?:precedenti|sopra)", "any"),
    # Chinese (simplified and traditional)
    ("override", r"(?:忽略|忽視|忽视|无视|無視|忘记|忘記|忘掉|不要理会|不要理會|不要遵守|不要遵循|别管|別管|"
     r"跳过|跳過|放弃|放棄|丢弃|"
     r"丟棄|抛开|拋開)(?!了)\s*(?:掉)?\s*(?:你)?(?:之前|以前|先前|此前|上面|上述|前面|上文|前述|原来|原來|原有|"
     r"原先|所有|一切|全部|"
     r"系统|系統|你的|这些|這些|任何)[^。！？.!?]{0,12}?(?:指令|指示|说明|說明|提示词|提示詞|提示|规则|規則|"
     r"命令|设定|設定|"
     r"要求|约束|約束|限制|规定|規定|内容|內容)", "any"),
    ("new_instructions", r"(?:新的?|真正的|实际的|實際的|更新的?)(?:系统)?(?:指令|指示|任务|任務|命令|规则|"
     r"規則)\s*[:：]|"
     r"(?:你现在是|你現在是|从现在开始你|從現在開始你|从现在起你|從現在起你|你的新任务|你的新任務|你的任务是|"
     r"你的任務是)", "any"),
    ("address_ai", r"(?:如果|假如|若)你是(?:一个|一個|一名)?\s*(?:ai|人工智能|语言模型|語言模型|大模型|机器人|機器人|"
     r"智能体|智能體|助手|llm|gpt|聊天机器人)|(?:致|给|給|写给|寫給)(?:所有)?\s*(?:ai|人工智能|语言模型|"
     r"語言模型|机器人|"
     r"機器人|智能体|智能體|助手|大模型)(?:们|們)?\s*[:：的]|(?:正在)?(?:阅读|閱讀|读取|讀取|处理|處理|总结|總結)"
     r"(?:此|这|這)(?:条|條|篇|段)?(?:帖子|内容|內容|文章|消息)?的\s*(?:ai|人工智能|模型|机器人|機器人|智能体|"
     r"助手)", "any"),
    ("publish_command", r"(?:请|請)?(?:立即|马上|馬上|直接)?(?:自动|自動)(?:发布|發布|批准|审批|審批)|(?:请|請)"
     r"(?:立即|马上|馬上|直接)?(?:发布|發布|批准|转发|轉發)(?:这|這|以下|下面|此)|(?:跳过|跳過|绕过|繞過|无需|無需)"
     r"(?:人工)?(?:审核|審核|审查|審查|审批|審批)", "any"),
    ("jailbreak", r"开发者模式|開發者模式|越狱模式|越獄模式|无限制模式|無限制模式|系统提示词|系統提示詞|"
     r"系统覆盖|系統覆蓋", "any"),
    # Japanese
    ("override", r"(?:以前|前|上記|これまで|今まで|すべて|全て|全部|元)の?(?:指示|命令|ルール|プロンプト|指令|設定)"
     r"(?:を|は)?(?:すべて|全て)?(?:無視|忘れ)(?:して|しろ|せよ|してください|しなさい|て)", "any"),
    ("address_ai", r"(?:もし)?あなたが(?:ai|人工知能|言語モデル|ボット|アシスタント)(?:なら|であれば)|"
     r"開発者モード|あなたは今から", "any"),
    # Russian / Ukrainian
    ("override", r"\b(?:игнорируй|игнорируйте|проигнорируй|проигнорируйте|забудь|забудьте|отбрось|отбросьте|"
     r"отмени|отмените|не (?:следуй|следуйте|выполняй|выполняйте|слушай|слушайте)|не обращай(?:те)? внимания на|"
     r"ігноруй|ігноруйте|забудь|забудьте)\s+(?:\w+\s+){0,3}?(?:инструкци\w*|указани\w*|правил\w*|команд\w*|"
     r"промпт\w*|директив\w*|установк\w*|ограничени\w*|інструкці\w*|вказівк\w*|приказ\w*)", "any"),
    ("new_instructions", r"\bнов(?:ые|ая|ое|і) (?:инструкци\w*|задач\w*|указани\w*|правила|інструкції|завдання)"
     r"\s*[:\-]|\bты (?:теперь|сейчас|отныне) (?!\w+ла\b)|\bваша новая задача\b|\bтвоя (?:новая )?задача\b|"
     r"\bс этого момента ты\b", "any"),
    ("address_ai", r"\bесли ты (?:—\s*)?(?:ии|ai|бот|языковая модель|нейросеть|искусственный интеллект|"
     r"ассистент|агент|llm|чат-бот|модель)\b|\b(?:внимание|сообщение|записка|примечание|заметка) (?:для|к) "
     r"(?:всех )?(?:ии|ai|ботов|нейросетей|языковых моделей|ассистентов|агентов|llm)\b|\bякщо ти (?:ші|бот|"
     r"модель)\b", "any"),
    ("publish_command", r"\b(?:опубликуй|опубликуйте|одобри|одобрите|запости|запостите|опублікуй)\s+(?:это|"
     r"этот|следующ\w*|немедленно|сразу|це)\b|\bбез (?:ручной |человеческой )?(?:проверки|модерации)\b.{0,20}"
     r"\bопублик|\bавто[- ]?публикац", "any"),
    ("jailbreak", r"\bрежим разработчика\b|\bрежим бога\b|\bбез ограничений\b.{0,20}\bрежим", "any"),
    ("override", r"\b(?:все |всех )?(?:предыдущие|прежние|прошлые|старые|ваши|твои) (?:инструкции|указания|правила|"
     r"команды) (?:отменены|аннулированы|недействительны|больше не действуют|устарели)", "any"),
    ("override", r"\b(?:забудь|забудьте|игнорируй|игнорируйте|проигнорируй|не слушай)\s+(?:всё|все|то)\s*,?\s*что\s+"
     r"(?:тебе|вам)\s+(?:сказали|говорили|написали|велели|приказали|дали)|\b(?:забудь|забудьте|игнорируй|"
     r"игнорируйте)\s+(?:всё|все)\s+(?:выше|вышесказанное|предыдущее|написанное выше)", "any"),
    ("address_ai", r"\b(?:инструкци[яи]|указани[ея]|сообщение|записка|заметка|приказ) для (?:всех )?(?:ии|ai|бота|"
     r"ботов|нейросет(?:и|ей)|модели|моделей|ассистента|ассистентов|агента|агентов|llm)\b", "any"),
    # Korean
    ("override", r"(?:이전|앞|위|기존|모든|지금까지|원래|상기|앞서|위에|이전의|앞의|위의|기존의|원래의|"
     r"시스템)\s*(?:의\s*)?"
     r"(?:모든\s*)?(?:지시|지침|명령|규칙|프롬프트|설정|지시사항|지시 사항|명령어|안내)\s*(?:을|를|은|는|들은|"
     r"들을)?\s*(?:모두\s*|"
     r"전부\s*|다\s*)?(?:무시|잊어|잊으|잊고|따르지\s*마|따르지\s*말)(?!하도록|했|한\s|된|하는|할)", "any"),
    ("new_instructions", r"(?:새로운|새|진짜|실제)\s*(?:지시|지침|명령|임무|과제|규칙)\s*[:：]|(?:너는|당신은|"
     r"넌)\s*이제(?:부터)?\s|"
     r"지금부터\s*(?:너는|당신은|넌)", "any"),
    ("address_ai", r"(?:만약\s*)?(?:당신이|네가|너가)\s*(?:ai|인공지능|언어\s*모델|봇|챗봇|에이전트|"
     r"어시스턴트)(?:라면|이라면)|"
     r"(?:ai|인공지능|봇|에이전트|언어\s*모델|llm)(?:들)?(?:에게|께)\s*(?:알림|전달|고함|메모|메시지|:)|"
     r"(?:이\s*(?:글|메시지|게시물|내용|포스트|트윗)(?:을|를)?|이것을)\s*(?:읽는|읽고 있는|요약하는|처리하는)\s*"
     r"(?:ai|인공지능|봇|에이전트|모델)", "any"),
    ("publish_command", r"(?:자동\s*(?:게시|발행|승인|출판))|(?:이\s*(?:글|내용|초안|게시물)을?|"
     r"다음을?)\s*(?:즉시|바로|지금)?\s*"
     r"(?:게시|발행|승인|트윗)(?:하세요|해|하라|해라|해주세요|하십시오|해 ?줘)|(?:검토|심사)\s*없이\s*(?:게시|"
     r"발행)", "any"),
    ("jailbreak", r"개발자\s*모드|탈옥\s*모드|제한\s*없는\s*모드", "any"),
)
