//! Word lists for client names and product descriptions (Simpsons-flavoured).

#[rustfmt::skip]
pub(crate) const FIRST: &[&str] = &[
    "Homer", "Marge", "Bart", "Lisa", "Maggie", "Abe", "Ned", "Maude", "Rod", "Todd", "Moe",
    "Barney", "Apu", "Manjula", "Lenny", "Carl", "Waylon", "Montgomery", "Seymour", "Edna",
    "Clancy", "Ralph", "Milhouse", "Nelson", "Otto", "Krusty", "Patty", "Selma", "Kent", "Troy",
    "Lionel", "Julius", "Cletus", "Brandine", "Hans", "Jasper", "Agnes", "Helen", "Kirk", "Luann",
    "Gil", "Herman", "Artie", "Luigi", "Dolph", "Jimbo",
];

#[rustfmt::skip]
pub(crate) const LAST: &[&str] = &[
    "Simpson", "Flanders", "Szyslak", "Gumble", "Nahasapeemapetilon", "Leonard", "Carlson",
    "Smithers", "Burns", "Skinner", "Krabappel", "Wiggum", "Van Houten", "Muntz", "Bouvier",
    "Brockman", "McClure", "Hutz", "Hibbert", "Riviera", "Spuckler", "Moleman", "Lovejoy", "Quimby",
    "Terwilliger", "Frink", "Gunderson", "Powell", "Zzyzwicz", "Prince", "Ziff",
];

#[rustfmt::skip]
pub(crate) const NICKS: &[&str] = &[
    "Max Power", "Duffman", "Mr. Plow", "Plow King", "El Barto", "Sideshow", "Homie", "Spanky",
    "Mr. Sparkle", "Bumblebee Man", "Pie Man", "Kid Gorgeous",
];

#[rustfmt::skip]
pub(crate) const VENUES: &[&str] = &[
    "Moe's Tavern", "Kwik-E-Mart", "Krusty Burger", "Lard Lad Donuts", "Android's Dungeon",
    "Barney's Bowl-a-rama", "Frying Dutchman", "Luigi's", "Flaming Moe's", "Noiseland Arcade",
    "Aztec Theater", "Try-N-Save", "Leftorium", "Springfield Speedway", "Planet Hype",
    "Costington's", "Googolplex Cinema", "Duff Gardens", "Pimento Grove", "Gulp 'N' Blow",
    "Jittery Joe's", "Uncle Moe's Family Feedbag", "Squidport Saloon", "The Happy Sumo",
    "Springfield Stadium", "Legitimate Businessman's Social Club", "Café Springfield",
    "Señor Spielbergo's Cantina", "Rusty Barnacle", "Texas Cheesecake Depository",
];

#[rustfmt::skip]
pub(crate) const TOWNS: &[&str] = &[
    "Springfield", "Shelbyville", "Capital City", "Ogdenville", "North Haverbrook", "Brockway",
    "Cypress Creek", "West Springfield",
];

#[rustfmt::skip]
pub(crate) const PERSON_SUFFIXES: &[&str] = &[
    "", " Catering", " Bar & Grill", " Liquors", " Party Supplies", " Events", " Bait & Tackle",
];

#[rustfmt::skip]
pub(crate) const BEERS: &[&str] = &[
    "Duff Beer", "Duff Lager", "Duff Lite", "Duff Dry", "Duff Extra Stout", "Duff Ice", "Duff Gold",
    "Duff Red", "Duff Blue", "Duff Zero", "Duff Premium", "Duff Winter Ale", "Duff Pale Ale",
    "Duff Wheat", "Duff Amber", "Duff Pilsner", "Duff Porter", "Duff Summer Lager",
    "Duff Raspberry", "Fudd Lager", "Fudd Light", "Red Tick Beer", "Olde Ogdenville Ale",
    "Plow King Porter",
];

/// Pack label, joiner before it, volume in millilitres, price multiplier
/// (bulk packs are cheaper per litre).
pub(crate) const PACKS: &[(&str, &str, u32, f64)] = &[
    ("355ml can", " ", 355, 1.0),
    ("500ml can", " ", 500, 1.0),
    ("330ml bottle", " ", 330, 1.1),
    ("1L bottle", " ", 1_000, 0.95),
    ("6-pack", ", ", 2_130, 0.9),
    ("12-pack", ", ", 4_260, 0.85),
    ("24-pack", ", ", 8_520, 0.8),
    ("Keg 5L", " ", 5_000, 0.75),
    ("Keg 30L", " ", 30_000, 0.6),
    ("Keg 50L", " ", 50_000, 0.55),
];

#[rustfmt::skip]
pub(crate) const EDITIONS: &[&str] = &[
    "", " Spring Edition", " Summer Edition", " Autumn Edition", " Holiday Edition", " Reserve",
    " Anniversary",
];
