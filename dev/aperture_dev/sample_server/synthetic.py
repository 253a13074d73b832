"""Large synthetic libraries in the DATA_SCHEMA.md shape, for benchmarks and scale tests.

Series come from ~10 genre clusters whose titles, genres, tags and overviews are drawn from a per-cluster
vocabulary, so a sentence-embedding model puts same-cluster series close together. Users belong to taste
groups that share a pool of "popular in the group" series, so collaborative filtering has real signal on top
of content similarity, and each user's most recent entry usually comes from their tastes so a hold-out
evaluation is meaningful. Everything is drawn from one `random.Random(seed)`: same seed, same library.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta

# Per cluster: genres (first = primary), tags, networks, ratings, runtime range, title words (a, b) and the
# overview vocabulary (who, where, what, stakes, form); weight = share of the catalogue.
_CLUSTERS: dict[str, dict] = {
    "crime": dict(
        weight=14, genres=["Crime", "Drama", "Thriller", "Mystery"],
        networks=["HBO", "AMC", "FX", "Netflix", "BBC One"],
        ratings=["TV-MA", "TV-14"], runtime=(42, 60),
        tags=["detective", "murder investigation", "cartel", "drug trade", "heist", "corruption", "serial killer",
              "gangster", "police procedural", "money laundering", "organised crime", "forensics"],
        a=["Blood", "Cold", "Dirty", "Silent", "Broken", "Black", "Crooked", "Dead", "Hard", "Iron", "Hollow",
           "Bitter", "Burning", "Narrow", "Stolen"],
        b=["Money", "Justice", "Ledger", "Harbor", "Precinct", "Verdict", "Cartel", "Alibi", "Witness", "Score",
           "Territory", "Confession", "Syndicate", "Wire", "Badge"],
        who=["A homicide detective", "An undercover narcotics agent", "A cartel accountant", "A defence lawyer",
             "A small-town sheriff", "A forensic analyst", "A retired police inspector", "A getaway driver"],
        where=["a rain-soaked port city", "a border town", "the docks of Baltimore", "a quiet Midwestern suburb",
               "the criminal underworld of Chicago", "a corrupt coastal city"],
        what=["a string of unsolved murders", "a heist that goes badly wrong", "a money-laundering scheme",
              "a ruthless drug cartel", "a corrupt police unit", "the trail of a serial killer"],
        stakes=["loyalty", "corruption", "violence", "greed", "justice", "betrayal", "guilt"],
        form=["crime drama", "police procedural", "gritty thriller", "murder mystery"]),
    "scifi": dict(
        weight=12, genres=["Science Fiction", "Drama", "Mystery", "Action"],
        networks=["Syfy", "Apple TV+", "Netflix", "Prime Video", "HBO"], ratings=["TV-14", "TV-MA"], runtime=(42, 60),
        tags=["space", "time travel", "artificial intelligence", "dystopia", "alien", "android", "parallel worlds",
              "colony ship", "simulation", "cyberpunk", "first contact", "memory"],
        a=["Quantum", "Orbital", "Dark", "Outer", "Neon", "Stellar", "Synthetic", "Last", "Deep", "Silent",
           "Binary", "Fractured", "Hidden", "Distant", "Parallel"],
        b=["Horizon", "Signal", "Colony", "Protocol", "Frontier", "Station", "Drift", "Singularity", "Array",
           "Nebula", "Code", "Vector", "Relay", "Eclipse", "Machine"],
        who=["A starship engineer", "An android who starts to dream", "A quantum physicist", "A colony pilot",
             "A corporate programmer", "A time-displaced soldier", "A signal analyst"],
        where=["a generation ship between stars", "a megacity run by algorithms", "a research station on Europa",
               "a colony at the edge of the solar system", "a near-future Earth", "an orbital habitat"],
        what=["an alien signal nobody can decode", "a rift that opens into a parallel world",
              "an artificial intelligence that rewrites its own rules", "a time loop that keeps resetting",
              "a conspiracy hidden inside a simulation", "the first contact with an alien species"],
        stakes=["identity", "memory", "technology", "survival", "free will", "the future of humanity"],
        form=["science fiction drama", "mind-bending thriller", "space opera", "dystopian mystery"]),
    "comedy": dict(
        weight=14, genres=["Comedy", "Sitcom", "Family"], networks=["NBC", "ABC", "CBS", "FOX", "Comedy Central"],
        ratings=["TV-PG", "TV-14"], runtime=(20, 30),
        tags=["sitcom", "workplace", "mockumentary", "friends", "family", "feel-good", "ensemble", "roommates",
              "awkward", "satire", "small town", "office"],
        a=["Happy", "Second", "Middle", "Corner", "Weekend", "Friendly", "Lucky", "Big", "Little", "Awkward",
           "Perfect", "Crazy", "Sunny", "Silly", "Best"],
        b=["Office", "Neighbours", "Roommates", "Family", "Diner", "Shift", "Club", "Break", "Apartment",
           "Campus", "Staff", "Wedding", "Holiday", "Bunch", "Squad"],
        who=["An overconfident regional manager", "A group of mismatched roommates", "A cheerful substitute teacher",
             "A failed stand-up comedian", "A chaotic family of five", "A well-meaning town councillor"],
        where=["a struggling paper company", "a tiny apartment in Manhattan", "a run-down local diner",
               "an underfunded public school", "a small-town city hall", "a suburban cul-de-sac"],
        what=["one embarrassing misunderstanding after another", "pranks, rivalries and office gossip",
              "a wedding nobody planned properly", "awkward dates and petty feuds", "a sitcom-style scheme"],
        stakes=["friendship", "awkward romance", "workplace rivalry", "family chaos", "running jokes"],
        form=["sitcom", "workplace comedy", "mockumentary comedy", "feel-good ensemble comedy"]),
    "documentary": dict(
        weight=9, genres=["Documentary", "Nature", "History"], networks=["BBC One", "National Geographic", "Netflix",
                                                                          "PBS", "Discovery"],
        ratings=["TV-G", "TV-PG"], runtime=(45, 55),
        tags=["nature", "wildlife", "ocean", "planet", "conservation", "climate", "animal behaviour", "habitats",
              "polar", "rainforest", "marine life", "migration"],
        a=["Wild", "Blue", "Living", "Frozen", "Hidden", "Untamed", "Green", "Great", "Secret", "Ancient",
           "Restless", "Deep", "Vanishing", "Endless", "Open"],
        b=["Planet", "Ocean", "Earth", "Kingdom", "Seas", "Wilderness", "Islands", "Forests", "Rivers", "Skies",
           "Reefs", "Deserts", "Continents", "Tides", "Migrations"],
        who=["Wildlife film crews", "Marine biologists", "A veteran naturalist", "Field researchers",
             "Conservation scientists", "Camera teams on every continent"],
        where=["the frozen Arctic", "tropical coral reefs", "the African savannah", "the deep ocean",
               "ancient rainforests", "remote island chains"],
        what=["the great migrations of herds and birds", "the hidden lives of ocean predators",
              "the daily struggle of animals to survive", "how wildlife adapts to a warming planet",
              "never-before-filmed animal behaviour"],
        stakes=["wildlife", "conservation", "the natural world", "climate change", "biodiversity"],
        form=["nature documentary", "wildlife documentary series", "natural history series"]),
    "fantasy": dict(
        weight=10, genres=["Fantasy", "Drama", "Adventure", "History"], networks=["HBO", "Netflix", "Prime Video",
                                                                                  "History", "Starz"],
        ratings=["TV-MA", "TV-14"], runtime=(50, 65),
        tags=["dragons", "medieval", "magic", "political intrigue", "war", "kingdoms", "sword and sorcery",
              "period drama", "royal family", "vikings", "prophecy", "epic"],
        a=["Iron", "Crimson", "Shadow", "Golden", "Ashen", "Frost", "Ancient", "Broken", "Silver", "Burning",
           "Fallen", "Wolf", "Raven", "Storm", "Hollow"],
        b=["Crown", "Throne", "Kingdom", "Sword", "Realm", "Banner", "Dynasty", "Oath", "Citadel", "Saga",
           "Dragon", "Empire", "Legion", "Keep", "Prophecy"],
        who=["An exiled princess", "A sellsword with a cursed blade", "A young king", "A sorceress",
             "A Norse raider", "The heir to a fallen house"],
        where=["a continent of warring kingdoms", "a medieval realm", "the halls of a royal court",
               "the frozen north", "an empire on the brink of collapse", "a kingdom ruled by dragons"],
        what=["a bloody war of succession", "an ancient prophecy", "a rebellion against the crown",
              "the return of dragons and dark magic", "political intrigue among noble houses"],
        stakes=["power", "honour", "betrayal", "destiny", "war", "the throne"],
        form=["fantasy epic", "historical drama", "sword-and-sorcery saga", "period epic"]),
    "kids": dict(
        weight=10, genres=["Animation", "Kids", "Family", "Adventure"], networks=["Nickelodeon", "Disney Junior",
                                                                                  "Cartoon Network", "CBeebies"],
        ratings=["TV-Y", "TV-Y7", "TV-G"], runtime=(7, 24),
        tags=["preschool", "animals", "friendship", "learning", "imaginative play", "puppies", "rescue", "colours",
              "songs", "family", "teamwork", "cartoon"],
        a=["Little", "Tiny", "Happy", "Super", "Bouncy", "Busy", "Rainbow", "Sunny", "Giggly", "Brave",
           "Clever", "Fuzzy", "Jolly", "Magic", "Sparkly"],
        b=["Pups", "Bunnies", "Friends", "Town", "Train", "Garden", "Crew", "Tales", "Island", "Patrol",
           "Farm", "Dinos", "Band", "School", "Adventures"],
        who=["A curious little rabbit", "A team of rescue puppies", "A cheerful young dinosaur",
             "Two playful sisters", "A brave little tugboat", "A friendly monster"],
        where=["a colourful seaside town", "a sunny farm", "a magical treehouse", "a busy playgroup",
               "a cartoon jungle", "a friendly neighbourhood"],
        what=["a new game of make-believe every day", "small adventures and simple lessons",
              "songs about sharing and kindness", "rescues where everyone helps each other"],
        stakes=["friendship", "kindness", "teamwork", "learning", "imagination"],
        form=["preschool cartoon", "animated series for children", "family cartoon"]),
    "romance": dict(
        weight=8, genres=["Romance", "Drama", "Comedy"], networks=["Netflix", "ABC", "The CW", "Hallmark"],
        ratings=["TV-14", "TV-PG"], runtime=(40, 55),
        tags=["love triangle", "romance", "wedding", "second chances", "period romance", "heartbreak", "dating",
              "small town", "forbidden love", "high society"],
        a=["Sweet", "Secret", "Summer", "Forbidden", "Endless", "First", "Tender", "Starlit", "Lost", "Golden",
           "Velvet", "Honey", "Restless", "Midnight", "Promised"],
        b=["Hearts", "Affair", "Season", "Promise", "Vows", "Romance", "Letters", "Kiss", "Match", "Bride",
           "Dance", "Engagement", "Rose", "Valentine", "Serenade"],
        who=["A young widow", "A small-town florist", "A debutante", "A heartbroken chef",
             "Two rival wedding planners"],
        where=["a Regency ballroom", "a seaside village", "a glamorous high-society season", "a vineyard in Tuscany",
               "a bustling city bakery"],
        what=["an unexpected love triangle", "a forbidden romance", "a second chance at first love",
              "a fake engagement that turns real", "a season of courtship and scandal"],
        stakes=["love", "heartbreak", "family expectations", "desire", "second chances"],
        form=["romantic drama", "period romance", "romantic comedy series"]),
    "horror": dict(
        weight=7, genres=["Horror", "Thriller", "Mystery", "Supernatural"], networks=["FX", "Shudder", "AMC",
                                                                                      "Netflix"],
        ratings=["TV-MA"], runtime=(42, 60),
        tags=["haunted house", "zombies", "supernatural", "demons", "survival horror", "ghosts", "cult", "vampires",
              "possession", "curse", "slasher", "folk horror"],
        a=["Haunted", "Cursed", "Bleeding", "Hollow", "Grim", "Pale", "Rotting", "Whispering", "Dread",
           "Sunken", "Forsaken", "Crawling", "Midnight", "Wicked", "Ashen"],
        b=["House", "Manor", "Woods", "Chapel", "Asylum", "Graves", "Hollow", "Harvest", "Cellar", "Ritual",
           "Coven", "Fog", "Reckoning", "Shadows", "Bones"],
        who=["A grieving family", "A paranormal investigator", "A group of survivors", "A small-town priest",
             "A nurse on the night shift"],
        where=["a haunted mansion", "an abandoned asylum", "a fog-bound island village", "a cursed forest",
               "a town overrun by the dead"],
        what=["a malevolent spirit that will not rest", "a zombie outbreak", "a demonic possession",
              "a cult that worships something in the woods", "a curse passed down through generations"],
        stakes=["fear", "grief", "survival", "madness", "the supernatural"],
        form=["horror series", "supernatural thriller", "survival horror drama"]),
    "reality": dict(
        weight=8, genres=["Reality", "Game Show", "Competition"], networks=["Bravo", "CBS", "MTV", "Food Network",
                                                                            "Netflix"],
        ratings=["TV-14", "TV-PG"], runtime=(40, 50),
        tags=["competition", "cooking", "elimination", "contestants", "makeover", "dating show", "survival",
              "talent show", "baking", "judges", "prize money", "challenges"],
        a=["Ultimate", "Big", "Real", "Top", "Extreme", "Great", "Hot", "Island", "Perfect", "Million",
           "Total", "Grand", "Final", "Master", "Star"],
        b=["Chef", "Challenge", "Showdown", "Bake Off", "Makeover", "Survivor", "Contest", "Games", "Villa",
           "Kitchen", "Dealers", "Battle", "Talent", "Cook-Off", "Race"],
        who=["Amateur bakers", "Ambitious home cooks", "Sixteen strangers", "Rival designers", "Young singles"],
        where=["a remote island", "a professional kitchen", "a luxury villa", "a reality competition house",
               "a giant tent in the countryside"],
        what=["weekly eliminations judged by experts", "challenges for a cash prize", "alliances and backstabbing",
              "a race against the clock"],
        stakes=["competition", "drama", "elimination", "the grand prize", "rivalries"],
        form=["reality competition", "cooking competition", "reality show"]),
    "anime": dict(
        weight=8, genres=["Animation", "Anime", "Action", "Fantasy"], networks=["TV Tokyo", "Fuji TV", "Crunchyroll",
                                                                                "MBS"],
        ratings=["TV-14", "TV-PG"], runtime=(23, 25),
        tags=["anime", "shonen", "mecha", "isekai", "martial arts", "demons", "tournament", "school", "magic",
              "giant robots", "samurai", "power system"],
        a=["Spirit", "Blade", "Steel", "Soul", "Phantom", "Crimson", "Eternal", "Lightning", "Demon", "Sky",
           "Shadow", "Dragon", "Mecha", "Cyber", "Moon"],
        b=["Hunter", "Academy", "Slayer", "Alchemist", "Titan", "Pirates", "Ninja", "Knights", "Guardians",
           "Quest", "Reincarnation", "Arena", "Gate", "Tournament", "Legends"],
        who=["A hot-headed teenage swordsman", "A boy reincarnated in another world", "A mecha pilot",
             "A young demon slayer", "A high school student with hidden powers"],
        where=["a world of demons and spirits", "a futuristic Tokyo", "a fantasy world like a video game",
               "an academy for magic users", "a war between giant robots"],
        what=["a tournament of the strongest fighters", "a quest to become the greatest hunter",
              "an invasion of titans", "the rise of a demon lord"],
        stakes=["friendship", "rivalry", "training arcs", "power", "honour"],
        form=["anime series", "shonen anime", "action anime"]),
}
_PLACES = ["Harbor City", "Northfield", "Redwater", "Ashford", "Kingsport", "Silver Lake", "Brookhaven", "Eastmoor",
           "Greyhaven", "Stonebridge", "Blackwood", "Millbrook"]
_HOOKS = ["must confront", "must navigate", "cannot escape", "must make sense of", "will be tested by"]
_START, _END = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 11, 20, 23, 0, tzinfo=UTC)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _title(rng: random.Random, c: dict, used: set[str]) -> str:
    """Cluster-flavoured unique title; a numbered suffix only once the vocabulary is exhausted."""
    for _ in range(30):
        a, b, place = rng.choice(c["a"]), rng.choice(c["b"]), rng.choice(_PLACES)
        title = rng.choice([f"{a} {b}", f"The {a} {b}", f"{b} of {place}", f"{a} {b}: {place}"])
        if title not in used:
            break
    n = 2
    while title in used:
        title, n = f"{title.rsplit(' #', 1)[0]} #{n}", n + 1
    used.add(title)
    return title


def _overview(rng: random.Random, c: dict) -> str:
    s1, s2 = rng.sample(c["stakes"], 2)
    sentences = [f"{rng.choice(c['who'])} in {rng.choice(c['where'])} {rng.choice(_HOOKS)} {rng.choice(c['what'])}.",
                 f"As events unfold, {s1} and {s2} shape every choice.",
                 f"A {rng.choice(['gripping', 'sweeping', 'moving', 'bold', 'celebrated'])} "
                 f"{rng.choice(c['form'])} set in {rng.choice(c['where'])}."]
    return " ".join(sentences[:rng.choice([2, 3, 3])])


def _fit_seasons(rng: random.Random, series: list[dict], target: int) -> None:
    """Scale random season sizes so regular + special episodes total exactly `target` (when reachable)."""
    target -= sum(s["specials"] for s in series)
    total = sum(sum(s["seasons"]) for s in series)
    for s in series:
        s["seasons"] = [max(1, round(n * target / total)) for n in s["seasons"]]
    diff = target - sum(sum(s["seasons"]) for s in series)
    seasons = [(s, i) for s in series for i in range(len(s["seasons"]))]
    while diff and seasons:
        s, i = rng.choice(seasons)
        if diff > 0:
            s["seasons"][i] += 1
            diff -= 1
        elif s["seasons"][i] > 1:
            s["seasons"][i] -= 1
            diff += 1
        elif all(n == 1 for x, _ in seasons for n in x["seasons"]):
            break


def _series(rng: random.Random, n_series: int, n_episodes: int, seed: int) -> list[dict]:
    names = list(_CLUSTERS)
    weights = [_CLUSTERS[n]["weight"] for n in names]
    used: set[str] = set()
    out = []
    for i in range(n_series):
        cluster = rng.choices(names, weights)[0]
        c = _CLUSTERS[cluster]
        title = _title(rng, c, used)
        genres = [c["genres"][0], *rng.sample(c["genres"][1:], rng.randint(1, 2))]
        if rng.random() < 0.1:  # some cross-over, like real catalogues
            genres.append(rng.choice(_CLUSTERS[rng.choice(names)]["genres"]))
        year = rng.randint(1990, 2025)
        ended = rng.random() < 0.55 or year < 2012
        n_seasons = rng.randint(1, 8)
        library = "Kids TV" if cluster == "kids" else "TV Shows"
        libraries = [library]
        if rng.random() < 0.01:
            libraries.append("TV Shows" if library == "Kids TV" else "Kids TV")
        out.append({
            "key": f"{_slug(title)}-{i}", "libraries": libraries, "name": title, "sort_name": None,
            "original_title": None, "year": year,
            "end_year": min(2025, year + n_seasons + rng.randint(0, 3)) if ended else None,
            "status": "Ended" if ended else "Continuing", "studios": [rng.choice(c["networks"])],
            "genres": list(dict.fromkeys(genres)), "tags": rng.sample(c["tags"], rng.randint(2, 5)),
            "official_rating": rng.choice(c["ratings"]),
            "community_rating": round(min(9.8, max(3.0, rng.gauss(7.2, 0.9))), 1),
            "provider_ids": {"Tvdb": str(300000 + seed * 7919 + i), "Imdb": f"tt{20000000 + seed * 7919 + i}",
                             "Tmdb": str(500000 + seed * 7919 + i)},
            "seasons": [rng.randint(6, 20) for _ in range(n_seasons)],
            "specials": rng.randint(1, 3) if rng.random() < 0.03 else 0,
            "runtime_minutes": rng.randint(*c["runtime"]),
            "overview": _overview(rng, c),
            "_cluster": cluster,
        })
    _fit_seasons(rng, out, n_episodes)
    return out


def _entry(rng: random.Random, s: dict, when: datetime) -> dict:
    """A realistic mix: completed, partial, resume-only, partial + resume, rewatch, favourite."""
    seasons = s["seasons"]
    season = rng.randint(1, len(seasons))
    episode = rng.randint(1, seasons[season - 1])
    r = rng.random()
    through: str | list[int] | None = "all" if r < 0.4 else [season, episode] if r < 0.85 else None
    resume = None
    if r >= 0.85 or (through != "all" and rng.random() < 0.25):
        nxt = (season, episode + 1) if episode < seasons[season - 1] else (season, episode)
        resume = [*(nxt if through else (1, 1)), rng.randint(5, 90)]
    favorite = rng.random() < (0.35 if through == "all" else 0.05)
    return {"series": s["key"], "library": rng.choice(s["libraries"]), "through": through,
            "play_count": 2 if through == "all" and rng.random() < 0.15 else 1,
            "last_played": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "resume": resume, "favorite": favorite}


def _users(rng: random.Random, series: list[dict], n_users: int) -> list[dict]:
    by_cluster: dict[str, list[dict]] = {}
    for s in series:
        by_cluster.setdefault(s["_cluster"], []).append(s)
    clusters = sorted(by_cluster)
    groups = []
    for _ in range(max(1, min(5, n_users // 2))):
        core = rng.sample(clusters, min(len(clusters), rng.randint(1, 2)))
        pool = [s for c in core for s in rng.sample(by_cluster[c], min(len(by_cluster[c]), 15))]
        groups.append((core, pool))
    special = rng.sample(range(n_users), min(n_users, 2 * max(1, round(n_users * 0.04))))
    disabled, empty = set(special[::2]), set(special[1::2])
    span = int((_END - _START).total_seconds())
    users = []
    for u in range(n_users):
        core, pool = groups[u % len(groups)]
        likes = list(dict.fromkeys(core + rng.sample(clusters, rng.randint(0, 1))))
        taste = [s for c in likes for s in by_cluster[c]]
        chosen: dict[str, tuple[dict, bool]] = {}
        target = 0 if u in empty else rng.randint(5, 40)
        for _ in range(target * 4):
            if len(chosen) >= target:
                break
            r = rng.random()
            s = rng.choice(pool) if r < 0.5 else rng.choice(taste) if r < 0.9 else rng.choice(series)
            chosen.setdefault(s["key"], (s, r < 0.9))
        picks = list(chosen.values())
        times = sorted(_START + timedelta(seconds=rng.randrange(span)) for _ in picks)
        rng.shuffle(picks)
        on_taste = [i for i, (_, fits) in enumerate(picks) if fits]
        if on_taste and rng.random() < 0.85:  # the latest entry usually follows the user's tastes
            last = rng.choice(on_taste)
            picks.append(picks.pop(last))
        history = [_entry(rng, s, when) for (s, _), when in zip(picks, times, strict=True)]
        users.append({"name": f"user{u + 1:03d}", "admin": u == 0, "disabled": u in disabled, "history": history})
    return users


def generate(n_series: int = 2000, n_episodes: int = 100_000, n_users: int = 50, seed: int = 0) -> dict:
    """A library description (DATA_SCHEMA.md shape) with ~n_episodes episodes; deterministic for a seed."""
    rng = random.Random(seed)
    series = _series(rng, n_series, n_episodes, seed)
    users = _users(rng, series, n_users)
    for s in series:
        del s["_cluster"]
    return {
        "libraries": [
            {"name": "TV Shows", "collection_type": "tvshows", "path": "/media/tv"},
            {"name": "Kids TV", "collection_type": "tvshows", "path": "/media/kids"},
            {"name": "Movies", "collection_type": "movies", "path": "/media/movies"},
        ],
        "series": series,
        "users": users,
    }
