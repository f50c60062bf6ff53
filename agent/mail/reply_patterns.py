"""Reply patterns: what mail clients write around a reply, per language, as data.

``agent.mail.replies`` finds quoted history and client signatures by their
wording, and the wording depends on the language of the client's interface,
not of the message: a French Outlook writes "Message d'origine" above an
English thread. Each ``ReplyLanguage`` below lists, for one language, what
Gmail, Outlook (desktop, web, mobile), Apple Mail, Thunderbird, Yahoo, Zoho
and the phone clients write; a new language or client is a new row or a new
phrase, never a new branch in the rules. ``replies`` reads only the merged
tables at the bottom.

Phrases are matched case-folded, with runs of whitespace (narrow and
no-break spaces too) collapsed to one space, " :" written ":" and the
full-width colon "：" written ":". Mobile signatures are regular
expressions matched against a whole short line; each repetition in them is
bounded, so they cannot backtrack without limit.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ATTRIBUTION_STARTS",
    "DATE_LINE_OPENERS",
    "HEADER_CATEGORY",
    "LANGUAGES",
    "MOBILE_SIGNATURE_PATTERNS",
    "ORIGINAL_MARKERS",
    "WROTE_ENDINGS",
    "WROTE_MIDDLES",
    "ReplyLanguage",
]


def _phrases(table: str) -> tuple[str, ...]:
    """A vocabulary written as "a | b | c" across lines, so that tables stay readable."""
    return tuple(phrase.strip() for phrase in table.split("|") if phrase.strip())


@dataclass(frozen=True)
class ReplyLanguage:
    """What the mail clients of one language write around a reply; each field "a | b | c".

    Every field is optional: a language whose clients write no attribution
    verb (Russian Gmail ends on the address) simply has none.
    """

    code: str
    """ISO 639-1, for the record and the per-language tests."""
    wrote: str = ""
    """How an attribution line ends, colon included: "wrote:", "a écrit:"."""
    wrote_middle: str = ""
    """Verbs that come before the name ("Am ... schrieb Max <max@x>:")."""
    starts: str = ""
    """The word(s) an attribution opens with ("On", "Am", "Le")."""
    separators: str = ""
    """The words of a separator line above a pasted message ("Original Message")."""
    header_from: str = ""
    header_date: str = ""
    header_to: str = ""
    header_cc: str = ""
    header_subject: str = ""
    date_openers: str = ""
    """Line openings that are a date header without a colon ("Message du 05/01/23")."""
    mobile: tuple[str, ...] = ()
    """Regular expressions for the line a client appends ("Sent from my iPhone"), whole line."""


LANGUAGES: tuple[ReplyLanguage, ...] = (
    ReplyLanguage(
        "en",
        wrote="wrote: | writes:",
        starts="on",
        separators="""original message | forwarded message | begin forwarded message |
            reply message | original email | forwarded email""",
        header_from="from",
        header_date="sent | date | sent at",
        header_to="to",
        header_cc="cc | bcc",
        header_subject="subject",
        mobile=(
            r"sent (?:from|with|via|using) (?:my |the |a |an )?\S+(?: \S+){0,4}",
            r"get outlook for \S+(?: \S+)?",
        ),
    ),
    ReplyLanguage(
        "de",
        wrote="schrieb: | geschrieben: | schrieben sie:",
        wrote_middle="schrieb",
        starts="am",
        separators="""ursprüngliche nachricht | original-nachricht | originalnachricht |
            weitergeleitete nachricht | anfang der weitergeleiteten nachricht""",
        header_from="von",
        header_date="gesendet | datum",
        header_to="an",
        header_cc="kopie",
        header_subject="betreff",
        mobile=(
            r"von (?:meinem |meiner |mein )?\S+(?: \S+){0,3} gesendet",
            r"gesendet (?:von|mit) (?:meinem |meiner |mein )?\S+(?: \S+){0,3}",
            r"outlook für \S+ herunterladen",
        ),
    ),
    ReplyLanguage(
        "fr",
        wrote="a écrit: | a ecrit: | nous a dit:",
        starts="le",
        separators="""message d'origine | message d’origine | message original |
            message transféré | début du message réexpédié | début du message transféré""",
        header_from="de | expéditeur",
        header_date="envoyé | date | date d'envoi | message du",
        header_to="à | a | destinataire",
        header_cc="cc | copie | copie à",
        header_subject="objet | sujet",
        date_openers="message du",
        mobile=(
            r"(?:envoyé|envoye) (?:de|depuis|à partir de|a partir de|avec) (?:mon |ma |l'|la |le )?"
            r"\S+(?: \S+){0,4}",
            r"(?:télécharger|obtenir) outlook pour \S+",
        ),
    ),
    ReplyLanguage(
        "es",
        wrote="escribió: | escribio: | ha escrito:",
        starts="el",
        separators="mensaje original | mensaje reenviado | inicio del mensaje reenviado",
        header_from="de | remitente",
        header_date="enviado | enviado el | fecha",
        header_to="para | destinatario",
        header_cc="cc | cco",
        header_subject="asunto",
        mobile=(
            r"enviado (?:desde|con|de) (?:mi |el |la )?\S+(?: \S+){0,4}",
            r"(?:obtener|descargar|descarga) outlook para \S+",
        ),
    ),
    ReplyLanguage(
        "pt",
        wrote="escreveu:",
        starts="em",
        separators="""mensagem original | mensagem encaminhada | mensagem reencaminhada |
            início da mensagem reencaminhada | início da mensagem encaminhada""",
        header_from="de",
        header_date="enviado | enviada em | enviado em | data",
        header_to="para",
        header_cc="cc | cópia",
        header_subject="assunto",
        mobile=(
            r"enviad[oa] (?:do|de|pelo|com|desde|a partir do|a partir de) (?:meu |minha |o |a )?"
            r"\S+(?: \S+){0,4}",
            r"(?:obter|obtenha o|baixe o|baixar o) outlook para \S+",
        ),
    ),
    ReplyLanguage(
        "it",
        wrote="ha scritto: | scrisse:",
        wrote_middle="scrisse",
        starts="il | il giorno | in data",
        separators="messaggio originale | messaggio inoltrato | inizio messaggio inoltrato",
        header_from="da | mittente",
        header_date="inviato | data",
        header_to="a | destinatario",
        header_cc="cc",
        header_subject="oggetto",
        mobile=(
            r"inviato da(?:l mio| mio)? \S+(?: \S+){0,3}",
            r"(?:scarica|ottieni) outlook per \S+",
        ),
    ),
    ReplyLanguage(
        "nl",
        wrote="schreef: | geschreven:",
        wrote_middle="schreef",
        starts="op",
        separators="""oorspronkelijk bericht | origineel bericht | doorgestuurd bericht |
            begin doorgestuurd bericht""",
        header_from="van | afzender",
        header_date="verzonden | datum",
        header_to="aan",
        header_cc="cc",
        header_subject="onderwerp",
        mobile=(
            r"(?:verzonden|verstuurd) (?:vanaf|met|van|via) (?:mijn )?\S+(?: \S+){0,3}",
            r"outlook voor \S+ downloaden",
            r"download outlook voor \S+",
        ),
    ),
    ReplyLanguage(
        "sv",
        wrote="skrev: | skrev följande:",
        wrote_middle="skrev",
        starts="den",
        separators="ursprungligt meddelande | originalmeddelande | vidarebefordrat meddelande",
        header_from="från | avsändare",
        header_date="skickat | datum",
        header_to="till",
        header_cc="kopia",
        header_subject="ämne",
        mobile=(
            r"skickat från (?:min |mitt )?\S+(?: \S+){0,3}",
            r"(?:hämta|skaffa) outlook för \S+",
        ),
    ),
    ReplyLanguage(
        "da",
        wrote="skrev: | skrev følgende:",
        wrote_middle="skrev",
        starts="den",
        separators="""oprindelig meddelelse | oprindelig besked | original meddelelse |
            videresendt meddelelse | videresendt besked""",
        header_from="fra | afsender",
        header_date="sendt | dato",
        header_to="til",
        header_cc="cc",
        header_subject="emne",
        mobile=(
            r"sendt fra (?:min |mit )?\S+(?: \S+){0,3}",
            r"(?:hent|få) outlook til \S+",
        ),
    ),
    ReplyLanguage(
        "no",
        wrote="skrev: | skrev følgende:",
        wrote_middle="skrev",
        starts="den | på",
        separators="opprinnelig melding | original melding | videresendt melding",
        header_from="fra | avsender",
        header_date="sendt | dato",
        header_to="til",
        header_cc="kopi",
        header_subject="emne",
        mobile=(
            r"sendt fra (?:min |mitt )?\S+(?: \S+){0,3}",
            r"(?:hent|skaff deg|last ned) outlook for \S+",
        ),
    ),
    ReplyLanguage(
        "fi",
        wrote="kirjoitti:",
        starts="päivänä",
        separators="alkuperäinen viesti | välitetty viesti | välitetty viesti alkaa",
        header_from="lähettäjä",
        header_date="lähetetty | päivämäärä",
        header_to="vastaanottaja",
        header_cc="kopio",
        header_subject="aihe",
        mobile=(
            r"lähetetty (?:laitteesta |puhelimesta )?\S+(?: \S+){0,3}",
            r"hanki outlook (?:for|-sovellus) \S+",
        ),
    ),
    ReplyLanguage(
        "pl",
        wrote="napisał: | napisała: | napisał(a): | pisze:",
        starts="w dniu | dnia",
        separators="""wiadomość oryginalna | oryginalna wiadomość | przekazana wiadomość |
            wiadomość przekazana dalej""",
        header_from="od | nadawca",
        header_date="wysłano | wysłane | data",
        header_to="do | adresat",
        header_cc="dw | kopia",
        header_subject="temat",
        mobile=(
            r"wysłan[eoa] z (?:mojego |mojej |mego )?\S+(?: \S+){0,3}",
            r"pobierz (?:aplikację )?outlook dla \S+(?: \S+){0,2}",
        ),
    ),
    ReplyLanguage(
        "cs",
        wrote="napsal: | napsala: | napsal(a):",
        starts="dne",
        separators="původní zpráva | přeposlaná zpráva | původní e-mail",
        header_from="od | odesílatel",
        header_date="odesláno | datum",
        header_to="komu",
        header_cc="kopie",
        header_subject="předmět",
        mobile=(
            r"odeslán[oa] (?:z|ze) (?:mého |mé |mojí )?\S+(?: \S+){0,3}",
            r"(?:stáhněte si|získejte|stáhnout) outlook pro \S+",
        ),
    ),
    ReplyLanguage(
        "ru",
        wrote="написал: | написала: | написал(а): | пишет:",
        separators="""исходное сообщение | пересылаемое сообщение | переадресованное сообщение |
            пересланное сообщение | оригинальное сообщение""",
        header_from="от",
        header_date="отправлено | дата",
        header_to="кому",
        header_cc="копия",
        header_subject="тема",
        mobile=(
            r"отправлено (?:с|со|из) (?:моего |моей )?\S+(?: \S+){0,3}",
            r"(?:загрузите|скачайте|получите) outlook для \S+",
        ),
    ),
    ReplyLanguage(
        "tr",
        wrote="yazdı: | şunu yazdı:",
        separators="orijinal mesaj | özgün ileti | orijinal ileti | iletilen mesaj",
        header_from="kimden | gönderen",
        header_date="gönderildi | tarih | gönderilme tarihi",
        header_to="kime | alıcı",
        header_cc="bilgi",
        header_subject="konu",
        mobile=(
            r"\S{0,20}(?:iphone|ipad|android|samsung|galaxy|outlook|yahoo|mobil)\S{0,20}"
            r"(?: \S+){0,3} gönderildi",
            r"\S+ için outlook'u (?:edinin|indirin)",
        ),
    ),
    ReplyLanguage(
        "ja",
        wrote="のメッセージ: | のメール: | は書きました: | さんは書きました: | 書きました:",
        separators="元のメッセージ | 転送されたメッセージ | 転送メッセージ | 元のメール",
        header_from="差出人 | 送信者",
        header_date="送信日時 | 日付 | 送信日",
        header_to="宛先 | 宛て先",
        header_cc="cc | 写し",
        header_subject="件名",
        mobile=(
            r"\S{0,20}(?:iphone|ipad|android|携帯|スマートフォン)\S{0,10}から送信",
            r"\S+ ?版 ?outlook ?を入手",
        ),
    ),
    ReplyLanguage(
        "zh",
        wrote="写道: | 寫道: | 的来信:",
        starts="在",
        separators="""原始邮件 | 原始郵件 | 原始消息 | 原始訊息 | 转发的邮件 | 轉寄的郵件 |
            转发邮件 | 邮件原件""",
        header_from="发件人 | 寄件者 | 寄件人 | 發件人",
        header_date="发送时间 | 發送時間 | 寄件日期 | 日期 | 时间 | 發件日期",
        header_to="收件人 | 收件者",
        header_cc="抄送 | 副本",
        header_subject="主题 | 主旨 | 主題",
        mobile=(
            r"(?:发自|發自|来自|來自)我的 ?\S+(?: \S+){0,2}",
            r"從我的 ?\S+ ?傳送",
            r"获取(?:适用于 )?\S+(?: 版| 的)? ?outlook",
        ),
    ),
    ReplyLanguage(
        "ko",
        wrote="작성: | 님이 작성:",
        separators="원본 메시지 | 전달된 메시지",
        header_from="보낸 사람",
        header_date="보낸 날짜 | 날짜",
        header_to="받는 사람",
        header_cc="참조",
        header_subject="제목",
        mobile=(r"(?:나의 )?\S+에서 보냄",),
    ),
    # Languages met in the wild less often: their attribution verbs and separators.
    ReplyLanguage(
        "misc",
        wrote="""írta: | έγραψε: | kirjutas: | rašė: | rakstīja: | a scris: | написа: |
            napisao je: | napísal: | написав: | пише:""",
        starts="în",
        separators="eredeti üzenet | továbbított üzenet | původní zpráva",
        header_from="feladó | od koga",
        header_date="dátum | küldve",
        header_to="címzett",
        header_subject="tárgy",
    ),
)


def _merged(field: str) -> tuple[str, ...]:
    """One field of every language, in table order, without duplicates."""
    seen: dict[str, None] = {}
    for language in LANGUAGES:
        for phrase in _phrases(getattr(language, field)):
            seen.setdefault(" ".join(phrase.split()), None)
    return tuple(seen)


WROTE_ENDINGS: tuple[str, ...] = _merged("wrote")
WROTE_MIDDLES: tuple[str, ...] = tuple(f" {verb} " for verb in _merged("wrote_middle"))
ATTRIBUTION_STARTS: tuple[str, ...] = tuple(f"{word} " for word in _merged("starts"))
ORIGINAL_MARKERS: frozenset[str] = frozenset(_merged("separators"))
DATE_LINE_OPENERS: tuple[str, ...] = tuple(f"{word} " for word in _merged("date_openers"))
HEADER_CATEGORY: dict[str, str] = {
    key: category
    for category in ("from", "date", "to", "cc", "subject")
    for key in _merged(f"header_{category}")
}
"""Header name -> what it means ("von" -> "from"). No name means two things in the table;
``tests/agent/mail/test_reply_languages.py`` keeps it so."""
MOBILE_SIGNATURE_PATTERNS: tuple[str, ...] = tuple(
    dict.fromkeys(pattern for language in LANGUAGES for pattern in language.mobile)
)
