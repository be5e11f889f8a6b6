// Built-in calibration text: written for octet, mixing registers a local assistant sees
// (explanations, stories, dialogue, instructions, code, numbers, lists). It shares nothing
// with WikiText, so perplexity on WikiText stays a held-out measurement.
#include "octet/calibration.h"

namespace octet {

const std::string& builtin_calibration_text() {
  static const std::string kText = R"TXT(The harbour town woke slowly. Fishing boats knocked against the pier while gulls argued over the remains of yesterday's catch, and the baker on Quay Street pulled the first trays of rye bread from an oven older than anyone who worked there. Marta, who ran the ferry office, unlocked the door at a quarter past six, switched on the kettle and read the weather report twice: wind from the north-west, force five, easing by noon. She decided the morning crossing would run, but she wrote a note for the afternoon captain to check again at eleven.

Why does bread rise? Yeast feeds on the sugars in flour and releases carbon dioxide. The gas is trapped by a network of gluten proteins, which stretch as the dough is kneaded. In the oven, the gas expands, the water turns to steam, and the proteins set, fixing the shape of the loaf. A longer, cooler rise gives the yeast and bacteria time to produce acids and aromas, which is why slow-fermented bread tastes more complex than bread made in an hour.

User: Can you help me plan a three-day trip to the mountains in early spring?
Assistant: Of course. Early spring can be unpredictable, so plan for both mud and snow. Day one: arrive, check the trail conditions at the visitor centre, and take a short walk along the river to get used to the altitude. Day two: a longer hike to the lake, starting early; pack layers, waterproof boots, a map, and more water than you think you need. Day three: a relaxed morning, a visit to the village market, and the drive home before dark. Would you like suggestions for places to stay?
User: Yes, something quiet and not too expensive.
Assistant: Look for small family-run guesthouses in the villages below the pass rather than hotels at the ski resort. They are usually cheaper outside the winter season, and many serve a home-cooked dinner if you ask a day ahead.

def moving_average(values, window):
    """Return the simple moving average of a list of numbers."""
    if window <= 0:
        raise ValueError("window must be positive")
    result = []
    total = 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        if i >= window - 1:
            result.append(total / window)
    return result

int clamp(int x, int lo, int hi) { return x < lo ? lo : (x > hi ? hi : x); }

SELECT customer_id, COUNT(*) AS orders, SUM(amount) AS total
FROM orders
WHERE created_at >= '2024-01-01'
GROUP BY customer_id
HAVING SUM(amount) > 1000
ORDER BY total DESC;

The quarterly report showed revenue of 4.2 million, up 12 percent from the same quarter last year, while operating costs rose by only 3 percent. The board approved a dividend of 0.35 per share and set aside 600,000 for a new warehouse in the north. Analysts noted that the margin improvement came mostly from lower shipping costs and a shift towards higher-value products.

Shopping list: two litres of milk, a dozen eggs, spinach, lemons, olive oil, brown rice, a bag of onions, garlic, tinned tomatoes, coffee beans, and something for dessert.

Reminder: the dentist appointment is on Thursday at 14:30. Bring the insurance card and arrive ten minutes early to fill in the form.

In the middle of the nineteenth century, railways changed how people thought about time. Before trains, each town kept its own local time, set by the sun at noon. A traveller moving east or west had to adjust a watch at every stop. Railway companies needed consistent timetables, so they introduced standard time zones, first on their own lines and later by law. The change was resisted at first, but within a generation most people could not imagine living any other way.

Dear team, thank you all for the effort over the last two weeks. The release went out on schedule, and the early feedback has been positive. There are three issues we need to look at before Friday: the login page is slow on older phones, the export button sometimes produces an empty file, and the help text is still missing in two languages. Please add your notes to the tracker and we will review them at the stand-up tomorrow.

The little robot had one job: to water the tomatoes on the balcony every evening. It did this faithfully for three summers. Then one night, the tomatoes were gone, replaced by a pot of small, spiky plants that did not seem to want any water at all. The robot rolled back and forth, puzzled. It measured the soil, checked its memory, and finally sent a message to its owner: "The tomatoes have changed shape. Please advise." The reply came an hour later: "Those are cacti. Water them once a month. Sorry, I forgot to tell you."

How to change a flat tyre: park on a flat, safe surface and turn on the hazard lights. Loosen the wheel nuts slightly while the wheel is still on the ground. Raise the car with the jack at the point shown in the manual. Remove the nuts and the wheel, fit the spare, and tighten the nuts by hand. Lower the car, then tighten the nuts fully in a star pattern. Check the pressure of the spare as soon as you can.

Photosynthesis converts light energy into chemical energy. In the chloroplasts, light splits water molecules, releasing oxygen and producing energy carriers. These carriers then power the fixation of carbon dioxide into sugars in a cycle of reactions that does not need light directly. Plants use the sugars for growth and store the surplus as starch.

Q: What is the capital of Australia? A: Canberra.
Q: How many sides does a hexagon have? A: Six.
Q: Who wrote the novel about a whale and a captain obsessed with hunting it? A: Herman Melville.
Q: What is 17 multiplied by 23? A: 391.

{"name": "set_alarm", "arguments": {"time": "07:00", "label": "Morning run", "repeat": ["mon", "wed", "fri"]}}

The committee met again after lunch. Some members wanted to delay the decision until the survey results were in; others argued that waiting would only make the repairs more expensive. In the end they agreed on a compromise: the roof would be fixed immediately, and the question of the new hall would be put to a vote in the autumn.

Le marché ouvre à huit heures. Die Bibliothek ist sonntags geschlossen. El tren sale a las nueve y media. 今日はとても良い天気です。 Сегодня мы идём в театр. 我们明天见。

She closed the laptop, looked out at the rain, and smiled. The problem that had taken all week was solved by a single line: a missing minus sign in the rotation formula. Tomorrow she would write the tests that should have caught it.
)TXT";
  return kText;
}

}  // namespace octet
