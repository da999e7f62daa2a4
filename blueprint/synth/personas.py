"""The latent personas of the synthetic corpus.

Each persona has its own mix of the 13 actions (rare ones included), its own
political vocabulary around the 2025 Canadian federal election, and its own writing
style: length, hashtags, emoji, capitals and links. Clustering a synthetic corpus
should recover these personas, which is what makes the corpus useful for testing
the persona stage end to end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from blueprint.actions import ACTIONS


@dataclass(frozen=True)
class Persona:
    """One latent persona: an action mix, a vocabulary and a style."""

    name: str
    weights: dict[str, float]
    subjects: tuple[str, ...]
    verbs: tuple[str, ...]
    objects: tuple[str, ...]
    openers: tuple[str, ...]
    closers: tuple[str, ...]
    hashtags: tuple[str, ...]
    emoji: tuple[str, ...]
    sentences: tuple[int, int] = (1, 3)
    hashtag_rate: float = 0.2
    emoji_rate: float = 0.1
    link_rate: float = 0.05
    shout_rate: float = 0.0
    lowercase: bool = False
    fact_rate: float = 0.2
    french_rate: float = 0.02
    french: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(ACTIONS)
        if unknown:
            raise ValueError(f"persona {self.name}: unknown actions {sorted(unknown)}")
        missing = [a for a in ACTIONS if self.weights.get(a, 0) <= 0]
        if missing:
            raise ValueError(f"persona {self.name}: every action needs a positive weight, missing {missing}")


def _w(post, reply, quote, upd, dele, like, unlike, repost, unrepost, follow, unfollow, block, unblock):
    return dict(zip(ACTIONS, (post, reply, quote, upd, dele, like, unlike, repost, unrepost, follow, unfollow, block,
                              unblock)))


# Facts with numbers that look PII-ish to a careless scrubber but are not PII:
# years, bill numbers, percentages, prices, dates, "e.g.".
FACTS: tuple[str, ...] = (
    "Bill C-69 is still the law.",
    "Bill C-21 passed in 2023.",
    "That's up 3.5% since 2021.",
    "Turnout was 62.5% last time.",
    "Rent here is $2,150 a month now.",
    "Groceries cost $312.40 this week.",
    "Election day is April 28, 2025.",
    "Advance polls run April 18-21.",
    "The debate is on 2025-04-16.",
    "Since 2015, nothing changed.",
    "The deficit hit $61.9 billion.",
    "Think of smaller ridings, e.g. Nunavut.",
    "Polls close at 9:30 p.m. ET.",
    "They promised 500,000 homes by 2030.",
    "GDP grew 0.4% in Q4.",
    "Section 33 is not a toy.",
    "Over 7.3 million people voted early.",
    "Interest rates are at 2.75% now.",
)

FRENCH_COMMON: tuple[str, ...] = (
    "Il faut voter le 28 avril.",
    "Le Québec mérite mieux que ça.",
    "Quelle campagne électorale!",
    "On en parle demain au débat.",
)

PERSONAS: tuple[Persona, ...] = (
    Persona(
        name="climate_progressive",
        weights=_w(16, 20, 6, 1.0, 0.8, 30, 1.5, 12, 1.0, 6, 1.0, 1.5, 0.4),
        subjects=("The carbon price", "Our climate plan", "Public transit", "Clean energy", "The NDP platform",
                  "Jagmeet Singh", "Pharmacare", "Dental care", "Elizabeth May", "The Green Party"),
        verbs=("is the only serious answer to", "would finally fix", "deserves more airtime than",
               "keeps getting ignored next to", "could transform", "is being sold out for"),
        objects=("the climate crisis", "this election", "wildfire season", "our kids' future",
                 "corporate greed", "oil and gas lobbyists", "the next generation", "clean air in our cities"),
        openers=("Honestly,", "Reminder:", "Friendly reminder that", "Can we talk about how", "Look,"),
        closers=("Vote like it matters.", "We can't wait any longer.", "Do better, Canada.", "The science is clear."),
        hashtags=("#cdnpoli", "#ClimateAction", "#NDP", "#elxn45", "#GreenNewDeal", "#ClimateCrisis"),
        emoji=("🌍", "🌱", "🔥", "💚", "✊"),
        sentences=(2, 4), hashtag_rate=0.6, emoji_rate=0.35, link_rate=0.12, fact_rate=0.2,
    ),
    Persona(
        name="fiscal_conservative",
        weights=_w(12, 26, 9, 0.6, 2.0, 26, 1.0, 8, 0.6, 5, 2.0, 5.0, 1.0),
        subjects=("Pierre Poilievre", "The Conservatives", "Axing the tax", "Lower taxes", "The deficit",
                  "Common sense", "Our oil and gas sector", "A balanced budget"),
        verbs=("will bring home", "is the way to fix", "is the real cost of", "beats ten more years of",
               "is killing", "will protect"),
        objects=("the Liberal carbon tax", "gas prices", "inflation", "the housing crisis", "Ottawa's spending",
                 "your paycheque", "hard-working families", "the middle class"),
        openers=("Fact:", "Wake up.", "Simple:", "Enough.", "Again,"),
        closers=("Bring it home!", "Axe the tax!", "Common sense for a change!", "Enough is enough!"),
        hashtags=("#AxeTheTax", "#cdnpoli", "#CPC", "#Poilievre", "#BringItHome"),
        emoji=("🇨🇦", "💸", "⛽", "👎"),
        sentences=(1, 2), hashtag_rate=0.3, emoji_rate=0.15, link_rate=0.04, shout_rate=0.35, fact_rate=0.25,
    ),
    Persona(
        name="liberal_centrist",
        weights=_w(14, 18, 10, 1.5, 0.8, 28, 1.0, 14, 0.8, 7, 0.8, 0.8, 0.3),
        subjects=("Mark Carney", "The Liberal plan", "Canadian sovereignty", "Our trade deals",
                  "The counter-tariffs", "Team Canada", "Steady leadership", "Chrystia Freeland"),
        verbs=("is exactly what we need against", "stands up to", "is a serious response to",
               "will protect us from", "puts a plan behind", "makes sense given"),
        objects=("Trump's tariffs", "the trade war", "annexation talk", "economic uncertainty",
                 "our steel and aluminum workers", "the 51st state nonsense", "a volatile market"),
        openers=("Worth reading:", "Good thread.", "Important:", "This matters:", "Notably,"),
        closers=("Elbows up.", "Canada is not for sale.", "Stay informed.", "Worth your time."),
        hashtags=("#ElbowsUp", "#cdnpoli", "#LPC", "#Carney", "#CanadaStrong"),
        emoji=("🇨🇦", "💪", "🤝"),
        sentences=(2, 3), hashtag_rate=0.3, emoji_rate=0.1, link_rate=0.25, fact_rate=0.2,
    ),
    Persona(
        name="quebec_nationalist",
        weights=_w(18, 22, 5, 1.2, 1.0, 24, 1.2, 10, 0.8, 6, 1.2, 2.5, 0.6),
        subjects=("The Bloc", "Yves-François Blanchet", "Quebec", "Bill 96", "Our language",
                  "Supply management", "Quebec's voice in Ottawa"),
        verbs=("will defend", "has no reason to trust", "deserves respect for", "won't give up on",
               "is the last line of defence for", "refuses to bow to"),
        objects=("French in Montreal", "provincial jurisdiction", "Quebec's farmers", "Ottawa's overreach",
                 "our culture", "the federal health transfer"),
        openers=("Encore une fois:", "Voilà.", "Bref,", "Let's be clear:"),
        closers=("Vive le Québec!", "Le Québec d'abord.", "Quebec first.", "On lâche pas."),
        hashtags=("#polqc", "#BlocQc", "#cdnpoli", "#Québec"),
        emoji=("⚜️", "💙"),
        sentences=(1, 3), hashtag_rate=0.4, emoji_rate=0.2, link_rate=0.06, fact_rate=0.15, french_rate=0.35,
        french=("Le Bloc va défendre le Québec.", "Blanchet a gagné le débat.", "Ottawa n'écoute jamais.",
                "La loi 96 protège notre langue.", "Les agriculteurs méritent la gestion de l'offre."),
    ),
    Persona(
        name="poll_watcher",
        weights=_w(22, 12, 14, 2.5, 0.6, 18, 0.6, 16, 0.6, 9, 0.6, 0.3, 0.2),
        subjects=("The latest Nanos tracking", "The 338Canada projection", "Ontario's seat count",
                  "The Abacus poll", "Vote efficiency", "The regional breakdown", "Leger's new numbers"),
        verbs=("shows a tightening race in", "points to a majority in", "suggests big swings across",
               "has the Liberals ahead in", "has the Conservatives gaining in", "is within the margin in"),
        objects=("the 905 belt", "suburban Vancouver", "Atlantic Canada", "the Prairies", "Quebec City ridings",
                 "rural Ontario", "the GTA", "northern ridings"),
        openers=("New data:", "Thread on today's numbers.", "Methodology note:", "Caveat:", "Update:"),
        closers=("Margin of error matters.", "More in the thread below.", "Watch the trend, not one poll.",
                 "Regional samples are small."),
        hashtags=("#cdnpoli", "#polls", "#elxn45"),
        emoji=("📊", "📈"),
        sentences=(3, 5), hashtag_rate=0.15, emoji_rate=0.08, link_rate=0.4, fact_rate=0.5,
    ),
    Persona(
        name="meme_poster",
        weights=_w(10, 8, 8, 0.4, 2.5, 40, 3.0, 22, 2.5, 4, 1.5, 2.0, 1.0),
        subjects=("this campaign", "the debate", "every leader", "that ad", "the groceries", "my riding"),
        verbs=("is giving", "really said", "can't stop", "peaked with", "lives rent free in"),
        objects=("chaos", "main character energy", "my head", "absolutely nothing", "a group project",
                 "a reality show"),
        openers=("lmao", "ok so", "not me thinking", "y'all", "bruh"),
        closers=("💀", "i'm crying", "no notes", "send help"),
        hashtags=("#cdnpoli", "#elxn45", "#memes", "#debate"),
        emoji=("😂", "💀", "🙃", "🔥", "🤡"),
        sentences=(1, 1), hashtag_rate=0.5, emoji_rate=0.8, link_rate=0.02, lowercase=True, fact_rate=0.05,
    ),
    Persona(
        name="housing_advocate",
        weights=_w(15, 21, 7, 1.0, 1.0, 27, 1.0, 13, 0.8, 7, 1.0, 1.2, 0.4),
        subjects=("Housing supply", "Renters", "Zoning reform", "Non-market housing", "The housing accelerator",
                  "Co-ops", "First-time buyers"),
        verbs=("are getting crushed by", "is the fastest fix for", "needs federal money, not",
               "can't keep up with", "should be central to"),
        objects=("rents in Toronto", "speculators", "exclusionary zoning", "mortgage renewals",
                 "the affordability crisis", "empty condos", "every party's platform"),
        openers=("Every party:", "Housing is the issue.", "Quick reminder:", "Hot take:"),
        closers=("Build more homes.", "Housing is a human right.", "Legalize housing.", "Ask your candidate."),
        hashtags=("#housing", "#cdnpoli", "#HousingCrisis", "#YIMBY", "#onpoli"),
        emoji=("🏠", "🏗️", "🔑"),
        sentences=(2, 3), hashtag_rate=0.4, emoji_rate=0.2, link_rate=0.1, fact_rate=0.35,
    ),
    Persona(
        name="labour_organizer",
        weights=_w(14, 24, 6, 0.8, 0.8, 26, 0.8, 15, 0.8, 6, 0.8, 1.0, 0.3),
        subjects=("Workers", "Our union", "Canada Post workers", "Nurses", "The strike fund", "Solidarity",
                  "Minimum wage"),
        verbs=("won't accept", "are standing up to", "deserve better than", "built this country, not",
               "are fighting back against"),
        objects=("wage freezes", "back-to-work legislation", "CEOs' bonuses", "contract flipping",
                 "anti-scab loopholes", "understaffed hospitals"),
        openers=("Solidarity!", "Listen up:", "Heads up,", "Once again,"),
        closers=("Union strong.", "An injury to one is an injury to all.", "Join the picket.",
                 "Workers first."),
        hashtags=("#canlab", "#cdnpoli", "#1u", "#Solidarity"),
        emoji=("✊", "🔴", "📣"),
        sentences=(1, 3), hashtag_rate=0.45, emoji_rate=0.3, link_rate=0.08, shout_rate=0.1, fact_rate=0.2,
    ),
)

REPLY_OPENERS: tuple[str, ...] = ("Agreed.", "Not quite.", "Source?", "100%.", "This is the point.",
                                  "Respectfully, no.", "Exactly.", "Hard disagree.", "Thank you.")
QUOTE_OPENERS: tuple[str, ...] = ("This.", "Read this:", "Wow.", "Worth sharing:", "Important thread.",
                                  "Couldn't have said it better:", "Yikes.")
