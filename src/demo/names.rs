//! The words the demo log is made of: names, time zones, tastes, what customers say (in English
//! and French), and the attributes made of them.

pub(super) const FIRST: [&str; 40] = [
    "Ada", "Léa", "Mathis", "Chloé", "Hugo", "Inès", "Lucas", "Zoé", "Noah", "Camille", "Aïcha",
    "Mehdi", "Sofia", "Jonas", "Emma", "Oliver", "Amélie", "Théo", "Nora", "Björn", "Yuki",
    "Haruto", "Priya", "Arjun", "Maya", "Lena", "Tomás", "Lucía", "Grace", "Samuel", "Olga",
    "Dmitri", "Fatou", "Kwame", "Chiara", "Marco", "Elif", "Can", "Siobhán", "Eoin",
];
pub(super) const LAST: [&str; 30] = [
    "Martin",
    "Bernard",
    "Dubois",
    "Lefèvre",
    "Moreau",
    "Fontaine",
    "Rossi",
    "García",
    "Müller",
    "Schmidt",
    "O'Brien",
    "Nguyen",
    "Tanaka",
    "Sato",
    "Kowalski",
    "Novák",
    "Silva",
    "Haddad",
    "Okafor",
    "Mensah",
    "Johansson",
    "Lindqvist",
    "Smith",
    "Brown",
    "Patel",
    "Sharma",
    "Yilmaz",
    "Costa",
    "Petit",
    "Roux",
];
pub(super) const ZONES: [(&str, u32); 7] = [
    ("Europe/Paris", 60),
    ("Europe/London", 10),
    ("America/New_York", 8),
    ("America/Los_Angeles", 6),
    ("Asia/Tokyo", 5),
    ("Australia/Sydney", 4),
    ("", 7),
];
/// Written to follow "all is well with" in a letter to the customer: second person.
pub(super) const AFFINITIES: [&str; 10] = [
    "your granddaughter Léa",
    "your marathon training",
    "the chess club",
    "your allotment garden",
    "your choir",
    "your vintage bicycles",
    "the twins",
    "your pottery classes",
    "your sourdough starter, Gerald",
    "your grandson's football team",
];
/// The same, for the customers who read French.
pub(super) const AFFINITIES_FR: [&str; 10] = [
    "votre petite-fille Léa",
    "votre préparation au marathon",
    "le club d’échecs",
    "votre potager",
    "votre chorale",
    "vos vélos anciens",
    "les jumeaux",
    "vos cours de poterie",
    "votre levain, Gérard",
    "l’équipe de foot de votre petit-fils",
];
pub(super) const PRODUCTS: [&str; 8] = [
    "the rye loaf",
    "cardamom buns",
    "the Saturday croissants",
    "the seeded sourdough",
    "pain au chocolat",
    "the lemon tart",
    "oat flat whites",
    "the monthly bread box",
];
pub(super) const PRODUCTS_FR: [&str; 8] = [
    "le pain de seigle",
    "les brioches à la cardamome",
    "les croissants du samedi",
    "le levain aux graines",
    "les pains au chocolat",
    "la tarte au citron",
    "les flat whites au lait d’avoine",
    "la box de pains du mois",
];
pub(super) const PETS: [&str; 6] = [
    "a greyhound called Pepper",
    "Biscuit the spaniel",
    "two cats, Miso and Tofu",
    "an old labrador named Bruno",
    "a parrot who says bonjour",
    "Noodle the dachshund",
];
pub(super) const PETS_FR: [&str; 6] = [
    "Poivre, votre lévrier",
    "Biscuit, votre épagneul",
    "vos deux chats, Miso et Tofu",
    "Bruno, votre vieux labrador",
    "votre perroquet qui dit bonjour",
    "Nouille, votre teckel",
];
pub(super) const COMPLAINTS: [&str; 12] = [
    "The sourdough I picked up on Saturday was burnt on the bottom and my kids wouldn't eat it.",
    "My bread box arrived two days late and the croissants were stale by then.",
    "The person at the counter was short with me this morning when I asked about allergens.",
    "I ordered a birthday cake with 'Happy 40th Sam' and it said 'Happy 14th Pam'.",
    "You raised the price of the rye loaf again without any notice. It's the third time this year.",
    "I was charged twice for my last order.",
    "The lemon tart had a hair in it. I'm really disappointed.",
    "I waited twenty minutes for a coffee while people who came after me were served.",
    "The bread box was left in the rain and everything was soggy.",
    "You were out of the gluten-free loaf again, after I called ahead to check.",
    "The app said my order was ready but nobody could find it.",
    "My oat milk latte was made with cow's milk. I'm intolerant and was ill all afternoon.",
];
pub(super) const COMPLAINTS_FR: [&str; 12] = [
    "Le levain que j’ai pris samedi était brûlé en dessous, et mes enfants n’en ont pas voulu.",
    "Ma box de pains est arrivée avec deux jours de retard, et les croissants étaient rassis.",
    "La personne au comptoir a été sèche avec moi ce matin quand j’ai demandé pour les allergènes.",
    "J’avais commandé un gâteau « Joyeux 40 ans Sam » et il était écrit « Joyeux 14 ans Pam ».",
    "Vous avez encore augmenté le prix du pain de seigle sans prévenir. C’est la troisième fois cette année.",
    "J’ai été débité deux fois pour ma dernière commande.",
    "Il y avait un cheveu dans la tarte au citron. Je suis vraiment déçue.",
    "J’ai attendu vingt minutes un café pendant que des gens arrivés après moi étaient servis.",
    "La box de pains a été laissée sous la pluie et tout était détrempé.",
    "Vous n’aviez encore pas de pain sans gluten, alors que j’avais appelé pour vérifier.",
    "L’application disait que ma commande était prête, mais personne ne l’a trouvée.",
    "Mon latte au lait d’avoine a été fait avec du lait de vache. Je suis intolérante et j’ai été malade tout l’après-midi.",
];
pub(super) const RESOLUTIONS: [&str; 5] = [
    "Refunded the order and Rosemary called to apologise.",
    "Replaced the cake free of charge and delivered it ourselves.",
    "Reversed the double charge; added a note to check card terminal.",
    "Sent a fresh bread box by courier the next morning.",
    "Talked it through in person; retrained the morning team on allergens.",
];
pub(super) const RESOLUTIONS_FR: [&str; 5] = [
    "Commande remboursée ; Rosemary a appelé pour s’excuser.",
    "Gâteau refait gratuitement et livré par nos soins.",
    "Double débit annulé ; note pour vérifier le terminal de paiement.",
    "Nouvelle box envoyée par coursier le lendemain matin.",
    "Discussion en personne ; l’équipe du matin reformée sur les allergènes.",
];
pub(super) const CANCELLATIONS: [&str; 5] = [
    "We're moving to Lyon, thank you for everything",
    "Cutting back on spending for a while.",
    "I've started baking my own bread, believe it or not!",
    "The delivery slot no longer works with my new job.",
    "Moving in with my daughter in Bordeaux.",
];
pub(super) const CANCELLATIONS_FR: [&str; 5] = [
    "Nous déménageons à Lyon, merci pour tout",
    "Je réduis un peu mes dépenses pour le moment.",
    "Je me suis mis à faire mon pain moi-même, croyez-le ou non !",
    "Le créneau de livraison ne va plus avec mon nouveau travail.",
    "Je pars vivre chez ma fille à Bordeaux.",
];
pub(super) const GOOD_REVIEWS: [&str; 5] = [
    "Best croissants in the neighbourhood.",
    "The staff remembered my name and my order. Lovely.",
    "The bread box is the highlight of my week.",
    "Cardamom buns to die for.",
    "Such a warm place on a cold morning.",
];
pub(super) const GOOD_REVIEWS_FR: [&str; 5] = [
    "Les meilleurs croissants du quartier.",
    "L’équipe se souvenait de mon prénom et de ma commande. Adorable.",
    "La box de pains, c’est le meilleur moment de ma semaine.",
    "Des brioches à la cardamome à tomber.",
    "Un endroit si chaleureux par un matin froid.",
];
pub(super) const BAD_REVIEWS: [&str; 3] = [
    "Too expensive for what it is these days.",
    "Queue was out the door and nobody seemed to care.",
    "The coffee was lukewarm, again.",
];

pub(super) const BAD_REVIEWS_FR: [&str; 3] = [
    "Trop cher pour ce que c’est, ces temps-ci.",
    "La queue débordait sur le trottoir et personne n’avait l’air de s’en soucier.",
    "Le café était tiède, encore une fois.",
];

/// Sparse attributes: many customers have one or two keys, some none; a French customer's are
/// in French, with `language`.
pub(super) fn attributes(rng: &mut fastrand::Rng, french: bool) -> Option<String> {
    let mut map = serde_json::Map::new();
    let pick = |rng: &mut fastrand::Rng, en: &[&'static str], fr: &[&'static str]| {
        let i = rng.usize(..en.len());
        if french { fr[i] } else { en[i] }
    };
    if rng.u32(..100) < 35 {
        map.insert(
            "affinity".into(),
            pick(rng, &AFFINITIES, &AFFINITIES_FR).into(),
        );
    }
    if rng.u32(..100) < 50 {
        map.insert(
            "favourite_product".into(),
            pick(rng, &PRODUCTS, &PRODUCTS_FR).into(),
        );
    }
    if rng.u32(..100) < 20 {
        map.insert("pet".into(), pick(rng, &PETS, &PETS_FR).into());
    }
    if french {
        map.insert("language".into(), "fr".into());
    }
    if rng.u32(..100) < 25 {
        map.insert(
            "birthday".into(),
            format!("{:02}-{:02}", rng.u8(1..13), rng.u8(1..29)).into(),
        );
    }
    (!map.is_empty()).then(|| serde_json::Value::Object(map).to_string())
}

/// A 20 KB complaint full of markup and template syntax: it must arrive as inert, trimmed text.
pub(super) fn hostile_note() -> String {
    format!(
        "<script>alert(1)</script> {{{{ 7*7 }}}} {{% raw %}} <img src=x onerror=alert(2)> {}",
        "This is unacceptable. ".repeat(950)
    )
}

/// Deliberately broken customers (email, name, time zone, opted out): a bad address, no name,
/// an empty name, a header-injection attempt, an unknown time zone, an opt-out, a hostile note.
pub(super) const BROKEN: [(&str, Option<&str>, Option<&str>, i64); 7] = [
    ("not-an-email", Some("Bad Address"), None, 0),
    ("nameless@example.com", None, None, 0),
    ("empty.name@example.com", Some(""), None, 0),
    (
        "eve@example.com",
        Some("Eve\r\nBcc: victim@example.com"),
        None,
        0,
    ),
    (
        "martian@example.com",
        Some("Marvin Martian"),
        Some("Mars/Olympus_Mons"),
        0,
    ),
    (
        "otto.optout@example.com",
        Some("Otto Optout"),
        Some("Europe/Paris"),
        1,
    ),
    (
        "hal.hostile@example.com",
        Some("Hal Hostile"),
        Some("Europe/Paris"),
        0,
    ),
];
