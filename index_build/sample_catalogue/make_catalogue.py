"""Generate adrecall's sample catalogue: ``ads.csv``, ``queries.jsonl`` and ``qrels.tsv``.

Why: the quick-start demo and the unit tests need a small, bilingual ad catalogue that ships
inside the package, is free of any third-party licence, and has graded relevance labels so that
recall@k can be computed offline. Everything here was written for this project.

What: about 3,000 search ads (half English, half Simplified Chinese) over 12 industries with
four or five product categories each. Every ad is assembled from an invented brand, a product,
a selling point, an offer, a city and a price, through a handful of headline templates; a few
ads carry a URL, an emoji or (in Chinese) English words, as real ads do. Queries are phrased
like real searches and usually share few words with the ads they should find. Relevance is
derived from categories, never from words: score 2 when the ad's category is exactly what the
query asks for, 1 for a related category of the same industry, whatever the ad's language.

The output is deterministic (fixed seed, stdlib only, sorted output), so re-running the script
reproduces the committed files byte for byte::

    python index_build/sample_catalogue/make_catalogue.py [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import string
import unicodedata
from dataclasses import dataclass
from pathlib import Path

SEED = 20240611
ADS_PER_INDUSTRY = 125  # per language: 12 industries x 125 x 2 languages = 3,000 ads
EN_WORDS = (8, 30)  # inclusive bounds on white-space separated words
ZH_CHARS = (10, 40)  # inclusive bounds on characters, white space not counted
URL_RATE = 0.06
EMOJI_RATE = 0.06
MAX_TRIES = 2000


@dataclass(frozen=True)
class Side:
    """One language's vocabulary for a category."""

    products: tuple[str, ...]
    points: tuple[str, ...]
    price: str | None  # format with a ``{p}`` slot, e.g. "from ${p}/night"
    span: tuple[int, int, int]  # range for p: start, stop (inclusive), step
    place: str | None  # format with a ``{city}`` slot, or None where a city makes no sense


@dataclass(frozen=True)
class Category:
    en: Side
    zh: Side


@dataclass(frozen=True)
class Query:
    query_id: str
    text: str
    language: str
    industry: str
    exact: tuple[str, ...]  # categories scored 2
    related: tuple[str, ...] = ()  # categories scored 1


def _side(products: str, points: str, price: str | None = None,
          span: tuple[int, int, int] = (0, 0, 1), place: str | None = None) -> Side:
    """Build a Side from ``|``-separated product and selling-point lists."""
    return Side(tuple(products.split("|")), tuple(points.split("|")), price, span, place)


EN_IN, ZH_IN = "in {city}", "{city}"

# industry -> (English brands, Chinese brands as "name/slug")
BRANDS: dict[str, tuple[str, str]] = {
    "travel": ("SkyHop|Wanderly|TripNest|BlueCompass|GoVista",
               "飞途/feitu|游侠客/youxiake|途乐/tule|悦行/yuexing|Fly易/flyyi"),
    "finance": ("NorthPeak Bank|Ledgerly|Coinwise|Harbor Mutual|FinStack",
                "鑫融/xinrong|安盈/anying|招财猫/zhaocaimao|钱小二/qianxiaoer|e融通/erongtong"),
    "education": ("BrightPath Academy|Scholarly|MentorHub|LearnLoop|Northstar Learning",
                  "知行课堂/zhixing|启航教育/qihang|青藤学院/qingteng|学无忧/xuewuyou|博雅在线/boya"),
    "automotive": ("Vantage Motors|DriveMax|AutoTrust|Roadwise|Motorline",
                   "驰远汽车/chiyuan|易车坊/yichefang|途驰/tuchi|骏驰/junchi|安驾/anjia"),
    "beauty": ("Glowry|Lumière Lab|PureBloom|Velvet & Co|Rosewood Beauty",
               "颜究所/yanjiusuo|花漾/huayang|悦美/yuemei|丽人坊/lirenfang|BeautyX/beautyx"),
    "food_delivery": ("DashBite|SpoonGo|Munchly|GoodFork|Hungry Owl",
                      "饿不了/ebule|快厨/kuaichu|食刻/shike|美味到家/meiweidaojia|送达鸭/songdaya"),
    "real_estate": ("KeyStone Realty|Nestfinder|UrbanLeaf|Maplecrest Realty|Brick & Beam",
                    "链居/lianju|好房通/haofangtong|筑家/zhujia|宜居/yiju|房小宝/fangxiaobao"),
    "electronics": ("VoltEdge|PixelPort|Orbit Digital|Nimbus Tech|GadgetBay",
                    "数码港/shumagang|极客汇/jikehui|科技仓/kejicang|新品汇/xinpinhui|云购数码/yungou"),
    "fashion": ("Maison Avery|Threadly|UrbanWeave|Northline|Kestrel & Co",
                "衣秀/yixiu|简衫/jianshan|潮牌社/chaopaishe|优品坊/youpinfang|风尚/fengshang"),
    "health": ("VitalCore|CareNow Health|Wellspring|Meridian Care|Evergreen Health",
               "康健/kangjian|好医生/haoyisheng|仁心/renxin|安康汇/ankanghui|百康/baikang"),
    "games": ("PixelForge|Questline|Lumen Games|NovaPlay|Arcadia Studios",
              "游乐星/youlexing|幻境/huanjing|趣玩社/quwanshe|星火互娱/xinghuo|喵玩/miaowan"),
    "home_services": ("HearthHelp|HandyNest|TrueCrew|Homestead Pros|FixRight",
                      "管家帮/guanjiabang|好帮手/haobangshou|家无忧/jiawuyou|到家邦/daojiabang|居安/juan"),
}

EMOJI = {"travel": "✈️", "finance": "💳", "education": "📚", "automotive": "🚗", "beauty": "💄",
         "food_delivery": "🍕", "real_estate": "🏠", "electronics": "📱", "fashion": "👟",
         "health": "💪", "games": "🎮", "home_services": "🧹"}

CATEGORIES: dict[str, dict[str, Category]] = {
    "travel": {
        "flights": Category(
            _side("round-trip flights|last-minute flight deals|nonstop international flights|"
                  "business class tickets|budget airline fares|multi-city tickets",
                  "compare 500+ airlines in one search|price alerts when fares drop|"
                  "no booking fees, ever|free changes on flexible fares|"
                  "pay in 4 interest-free installments",
                  "from ${p}", (89, 899, 10), "from {city}"),
            _side("特价机票|国际往返机票|商务舱机票|廉航机票|早鸟机票|多城市联程票",
                  "比价500+航空公司|降价提醒不错过|零手续费出票|退改签更灵活|支持分期付款",
                  "{p}元起", (199, 2999, 100), "{city}出发")),
        "hotels": Category(
            _side("boutique hotels|beachfront resorts|city-center hotel rooms|family suites|"
                  "pet-friendly stays",
                  "free cancellation on most rooms|member prices up to 30% lower|"
                  "breakfast included on select stays|late checkout for members|"
                  "verified guest reviews",
                  "from ${p}/night", (59, 399, 10), EN_IN),
            _side("精品酒店|海景度假酒店|市中心酒店|亲子套房|民宿客栈",
                  "大部分房型免费取消|会员价低至7折|含双早|会员延迟退房|真实住客点评",
                  "{p}元/晚起", (99, 899, 50), ZH_IN)),
        "cruises": Category(
            _side("Caribbean cruises|Alaska cruise getaways|Mediterranean cruise packages|"
                  "river cruises in Europe|all-inclusive cruise deals",
                  "kids sail free on select dates|drinks package included|"
                  "free balcony cabin upgrades|onboard credit on every booking|"
                  "ocean-view cabins at inside-cabin prices",
                  "from ${p} per person", (299, 1999, 100), "from {city}"),
            _side("日韩邮轮|地中海邮轮|长江游轮|加勒比海邮轮套餐|全包邮轮假期",
                  "儿童同行免费|含酒水套餐|免费升级阳台房|船上消费券送不停|中文服务全程陪同",
                  "{p}元/人起", (1999, 9999, 500), "{city}出发")),
        "visas": Category(
            _side("tourist visa applications|Schengen visa appointments|work visa assistance|"
                  "e-visa processing|passport renewal services",
                  "document checklist reviewed by experts|fast-track processing in 5 days|"
                  "98% approval rate|track your application online|no embassy queue",
                  "service fee from ${p}", (29, 199, 10), EN_IN),
            _side("旅游签证|申根签证预约|工作签证办理|电子签证|护照加急办理",
                  "专家审核材料|最快5天出签|出签率98%|进度在线可查|免排队递签",
                  "服务费{p}元起", (99, 599, 50), ZH_IN)),
        "tour_packages": Category(
            _side("guided group tours|honeymoon packages|family vacation bundles|"
                  "flight + hotel packages|weekend city breaks",
                  "small groups of 12 or fewer|local guides who know the hidden spots|"
                  "everything booked for you|no shopping stops|flexible dates at no extra cost",
                  "from ${p}", (399, 2999, 100), "from {city}"),
            _side("跟团游|蜜月旅行套餐|亲子游套餐|机+酒自由行|周末短途游",
                  "12人精品小团|当地导游带你玩|行程全包省心|纯玩无购物|日期可灵活调整",
                  "{p}元起", (599, 5999, 300), "{city}出发")),
    },
    "finance": {
        "credit_cards": Category(
            _side("cash back credit cards|travel rewards cards|no annual fee credit cards|"
                  "balance transfer cards|student credit cards",
                  "instant approval decision|0% intro APR for 15 months|"
                  "earn points on every purchase|no foreign transaction fees|"
                  "free credit score checks",
                  "{p}% cash back", (2, 5, 1)),
            _side("返现信用卡|航空里程信用卡|免年费信用卡|学生信用卡|白金信用卡",
                  "极速审批|新户首年免年费|消费即送积分|境外消费免手续费|额度最高5万",
                  "消费返现{p}%", (1, 5, 1))),
        "personal_loans": Category(
            _side("personal loans|debt consolidation loans|emergency cash loans|"
                  "home improvement loans|low-interest installment loans",
                  "funds as soon as tomorrow|check your rate without affecting your credit|"
                  "fixed monthly payments|no prepayment penalty|borrow $1,000 to $50,000",
                  "rates from {p}.99% APR", (5, 9, 1)),
            _side("个人信用贷款|小额贷款|装修贷|债务整合贷款|应急借款",
                  "最快当天放款|随借随还|无抵押免担保|提前还款无违约金|在线申请3分钟",
                  "年化利率低至{p}.6%", (3, 7, 1))),
        "savings": Category(
            _side("high-yield savings accounts|certificates of deposit|kids' savings accounts|"
                  "online savings accounts|money market accounts",
                  "FDIC insured up to $250,000|no minimum balance|no monthly fees|"
                  "automatic round-up savings|withdraw anytime",
                  "earn {p}.10% APY", (3, 5, 1)),
            _side("高收益储蓄|定期存款|儿童储蓄账户|货币基金|大额存单",
                  "存款保险保障|1元起存|无管理费|自动攒钱计划|随时支取",
                  "年利率{p}.1%", (2, 3, 1))),
        "investing": Category(
            _side("stock trading apps|robo-advisor portfolios|index fund investing|"
                  "retirement accounts|ETF portfolios",
                  "commission-free trades|start with just $5|portfolios rebalanced automatically|"
                  "expert research included|fractional shares available",
                  "${p} commission on stock trades", (0, 0, 1)),
            _side("股票开户|智能投顾|指数基金定投|养老金账户|ETF投资",
                  "手机开户5分钟|10元起投|智能调仓|专业投研报告|新手教程免费学",
                  "佣金低至万{p}", (1, 2, 1))),
        "insurance": Category(
            _side("term life insurance|auto insurance|renters insurance|pet insurance|"
                  "travel insurance",
                  "quotes in under 2 minutes|cancel anytime|claims paid in days, not weeks|"
                  "bundle and save|no medical exam for most applicants",
                  "from ${p}/month", (9, 49, 5), EN_IN),
            _side("定期寿险|车险|重疾险|宠物保险|意外险",
                  "2分钟在线投保|理赔快至1天|可随时退保|多险种组合更优惠|免体检投保",
                  "每月{p}元起", (9, 99, 10), ZH_IN)),
    },
    "education": {
        "coding_classes": Category(
            _side("coding classes for kids|Python bootcamps|web development courses|"
                  "Scratch programming camps|data science bootcamps",
                  "learn by building real games|small classes with live instructors|"
                  "job-ready portfolio in 12 weeks|free trial lesson|"
                  "certificates recognized by employers",
                  "from ${p}/month", (49, 499, 50), EN_IN),
            _side("少儿编程课|Python编程课|前端开发训练营|Scratch编程|数据分析课程",
                  "做游戏学编程|真人老师小班直播|12周打造作品集|免费试听一节课|结业颁发证书",
                  "{p}元/月起", (99, 999, 100), ZH_IN)),
        "language_learning": Category(
            _side("English conversation classes|Spanish lessons online|Japanese for beginners|"
                  "business English courses|French tutoring",
                  "practice with native speakers|10-minute daily lessons|"
                  "speak confidently in 90 days|AI pronunciation feedback|flexible schedules",
                  "from ${p}/month", (9, 29, 5)),
            _side("英语口语课|日语零基础|商务英语|西班牙语网课|外教一对一",
                  "母语外教陪练|每天10分钟|90天开口说|AI纠正发音|上课时间自由选",
                  "{p}元/月起", (39, 199, 20))),
        "test_prep": Category(
            _side("SAT prep courses|GMAT prep|IELTS test prep|GRE study plans|bar exam review",
                  "score guarantee or your money back|thousands of practice questions|"
                  "a personal study plan|live mock exams|top-scoring tutors",
                  "from ${p}", (199, 1299, 100), EN_IN),
            _side("考研辅导|雅思培训|托福冲刺班|公务员考试辅导|GRE备考",
                  "不过退费|海量真题库|定制学习计划|全真模考|高分名师授课",
                  "{p}元起", (999, 5999, 500), ZH_IN)),
        "online_degrees": Category(
            _side("online MBA programs|accredited online bachelor's degrees|"
                  "part-time master's degrees|online nursing degrees|IT certificates",
                  "study on your own schedule|accredited and employer-recognized|"
                  "financial aid available|graduate in as little as 18 months|no GRE required",
                  "from ${p} per credit", (299, 899, 100)),
            _side("在职MBA|在职研究生|网络本科|成人高考|专升本",
                  "边工作边读书|学历国家承认|学费可分期|最快18个月毕业|免联考入学",
                  "学费{p}元起", (9800, 29800, 5000))),
        "kids_tutoring": Category(
            _side("math tutoring for kids|reading tutors|homework help|after-school programs|"
                  "one-on-one tutoring",
                  "certified teachers|progress reports for parents|first session free|"
                  "in-home or online|matched to your child's grade level",
                  "from ${p}/hour", (25, 75, 10), EN_IN),
            _side("小学数学辅导|英语阅读课|作业辅导|课后托管|一对一家教",
                  "持证教师授课|家长实时看报告|首课免费|上门或线上|按年级定制",
                  "{p}元/小时起", (80, 300, 20), ZH_IN)),
    },
    "automotive": {
        "new_cars": Category(
            _side("new SUVs|compact sedans|family minivans|pickup trucks|hybrid crossovers",
                  "0% financing for 60 months|test drives at your home|"
                  "$2,000 off MSRP this month|5-star safety rating|low monthly lease payments",
                  "lease from ${p}/month", (199, 499, 50), EN_IN),
            _side("新款SUV|紧凑型轿车|7座MPV|皮卡|混动SUV",
                  "0首付轻松开回家|免费上门试驾|本月直降2万|五星安全评级|60期免息",
                  "{p}.98万起", (9, 29, 2), ZH_IN)),
        "used_cars": Category(
            _side("certified used cars|pre-owned SUVs|used trucks|low-mileage used cars|"
                  "used cars under $15k",
                  "150-point inspection|7-day money-back guarantee|free vehicle history report|"
                  "home delivery|trade-in value in minutes",
                  "from ${p}", (6999, 24999, 1000), EN_IN),
            _side("二手车|准新车|认证二手SUV|低里程二手车|5万以内二手车",
                  "150项专业检测|7天无理由退车|车况报告免费查|送车上门|旧车估价1分钟",
                  "{p}万起", (2, 15, 1), ZH_IN)),
        "electric_vehicles": Category(
            _side("electric cars|electric SUVs|plug-in hybrids|EV home chargers|long-range EVs",
                  "up to 400 miles of range|charge 10-80% in 18 minutes|"
                  "federal tax credit eligible|free home charger install|over-the-air updates",
                  "from ${p}", (29999, 49999, 2000), EN_IN),
            _side("纯电动车|电动SUV|插电混动|家用充电桩|长续航电动车",
                  "续航超700公里|快充30分钟|免购置税|免费安装充电桩|OTA在线升级",
                  "{p}.99万起", (12, 30, 2), ZH_IN)),
        "car_rental": Category(
            _side("car rentals|airport car hire|one-way rentals|luxury car rentals|"
                  "weekend rental deals",
                  "free cancellation up to 48 hours|unlimited mileage|"
                  "no hidden fees at the counter|pick up in 5 minutes|full insurance included",
                  "from ${p}/day", (19, 79, 10), EN_IN),
            _side("租车|机场租车|异地还车|豪华车租赁|周末自驾租车",
                  "48小时免费取消|不限里程|门店零加价|5分钟取车|含全险",
                  "{p}元/天起", (59, 299, 20), ZH_IN)),
        "car_repair": Category(
            _side("brake repair|oil changes|auto body repair|tire replacement|"
                  "check engine light diagnostics",
                  "certified mechanics|same-day service|12-month parts warranty|"
                  "free pickup and drop-off|upfront pricing",
                  "from ${p}", (29, 199, 20), EN_IN),
            _side("刹车保养|小保养换机油|钣金喷漆|换轮胎|发动机故障检测",
                  "认证技师|当天修好|配件质保12个月|免费上门取送车|明码标价",
                  "{p}元起", (99, 599, 50), ZH_IN)),
    },
    "beauty": {
        "skincare": Category(
            _side("hydrating moisturizers|vitamin C serums|acne treatment kits|sunscreen SPF 50|"
                  "anti-aging night creams",
                  "dermatologist tested|fragrance-free for sensitive skin|"
                  "visible results in 14 days|cruelty-free formulas|free samples with every order",
                  "from ${p}", (12, 68, 4)),
            _side("保湿面霜|维C精华|祛痘套装|SPF50防晒霜|抗老晚霜",
                  "皮肤科医生测试|敏感肌可用|14天见效|无动物实验|下单送小样",
                  "{p}元起", (59, 399, 20))),
        "makeup": Category(
            _side("long-wear foundations|matte lipsticks|eyeshadow palettes|waterproof mascara|"
                  "makeup starter kits",
                  "40 shades for every skin tone|smudge-proof all day|virtual try-on|"
                  "vegan ingredients|buy 2 get 1 free",
                  "from ${p}", (9, 49, 5)),
            _side("持妆粉底液|哑光口红|眼影盘|防水睫毛膏|新手化妆套装",
                  "40色号任你选|一整天不脱妆|AR在线试色|纯素配方|买二送一",
                  "{p}元起", (49, 299, 30))),
        "hair_salon": Category(
            _side("haircuts and styling|balayage color|keratin treatments|men's grooming|"
                  "bridal hair",
                  "book online in seconds|senior stylists|free consultation|walk-ins welcome|"
                  "first visit 20% off",
                  "from ${p}", (25, 150, 15), EN_IN),
            _side("剪发造型|染发|头发护理|男士理发|新娘跟妆",
                  "在线预约免排队|资深发型师|免费发型设计|随到随剪|首次到店8折",
                  "{p}元起", (38, 398, 40), ZH_IN)),
        "fragrance": Category(
            _side("designer perfumes|niche fragrances|eau de parfum gift sets|"
                  "travel-size perfume|men's colognes",
                  "long-lasting scent|free engraving|discovery sets to find your signature scent|"
                  "authenticity guaranteed|gift wrapping included",
                  "from ${p}", (19, 129, 10)),
            _side("香水|小众沙龙香|香水礼盒|香水小样|男士古龙水",
                  "留香持久|免费刻字|试香装先体验|正品保证|免费礼盒包装",
                  "{p}元起", (99, 899, 100))),
    },
    "food_delivery": {
        "restaurant_delivery": Category(
            _side("restaurant delivery|late-night food delivery|pizza delivery|"
                  "sushi delivered|local takeout",
                  "delivered in 30 minutes or less|$0 delivery fee on your first order|"
                  "thousands of local restaurants|live order tracking|no minimum order",
                  "deals from ${p}", (5, 15, 2), EN_IN),
            _side("外卖|夜宵外卖|披萨外送|寿司外卖|附近美食",
                  "30分钟送达|首单免配送费|上万家餐厅可选|实时查看骑手位置|无起送价",
                  "满{p}减10", (30, 60, 10), ZH_IN)),
        "groceries": Category(
            _side("grocery delivery|fresh produce delivery|organic groceries|"
                  "same-day grocery delivery|bulk pantry staples",
                  "farm-fresh produce|delivered in under an hour|free delivery over $35|"
                  "freshness guaranteed|exact items, no substitutions",
                  "weekly specials from ${p}", (1, 9, 1), EN_IN),
            _side("生鲜配送|蔬菜水果到家|有机食品|超市代购|粮油米面",
                  "产地直采|1小时达|满49元免运费|坏果包赔|次日达",
                  "每日特价{p}.9元起", (1, 9, 1), ZH_IN)),
        "meal_kits": Category(
            _side("meal kits|family dinner boxes|keto meal kits|vegetarian meal plans|"
                  "15-minute recipe boxes",
                  "pre-portioned ingredients|chef-designed recipes|skip or cancel anytime|"
                  "ready in 20 minutes|recyclable packaging",
                  "from ${p} per serving", (6, 12, 1)),
            _side("半成品净菜|家庭晚餐套餐|健身餐|素食套餐|快手菜料理包",
                  "食材按量配好|大厨研发菜谱|随时暂停订阅|20分钟上桌|环保包装",
                  "每份{p}元起", (15, 45, 5))),
        "coffee_tea": Category(
            _side("coffee delivery|bubble tea delivered|cold brew subscriptions|"
                  "specialty lattes|matcha drinks",
                  "freshly brewed to order|buy one get one free on Mondays|"
                  "oat milk at no extra charge|arrives still hot|rewards on every cup",
                  "from ${p}", (3, 7, 1), EN_IN),
            _side("咖啡外送|奶茶外卖|冷萃咖啡|生椰拿铁|抹茶饮品",
                  "现点现做|周一买一送一|燕麦奶免费换|送达依然热乎|每杯都能攒积分",
                  "{p}元起", (9, 25, 2), ZH_IN)),
    },
    "real_estate": {
        "apartments_for_rent": Category(
            _side("apartments for rent|studio apartments|furnished rentals|"
                  "pet-friendly apartments|short-term leases",
                  "verified listings only|virtual tours of every unit|no broker fees|"
                  "move in this week|flexible lease terms",
                  "from ${p}/month", (900, 2900, 100), EN_IN),
            _side("整租公寓|单间出租|精装公寓|可养宠物公寓|短租公寓",
                  "真实房源|VR看房|免中介费|拎包入住|月付可选",
                  "{p}元/月起", (1500, 5500, 500), ZH_IN)),
        "homes_for_sale": Category(
            _side("homes for sale|starter homes|luxury condos|townhouses|new construction homes",
                  "see new listings first|free home valuation|open houses this weekend|"
                  "local agents who know the market|3D walkthroughs",
                  "from ${p}k", (249, 899, 50), EN_IN),
            _side("新房|二手房|学区房|精装洋房|别墅",
                  "新房源抢先看|免费评估房价|周末开放看房|资深经纪人带看|3D实景看房",
                  "总价{p}万起", (80, 500, 30), ZH_IN)),
        "mortgages": Category(
            _side("mortgage rates|mortgage refinancing|first-time buyer mortgages|"
                  "home equity loans|mortgage pre-approval",
                  "pre-approved in minutes|compare offers from 20+ lenders|"
                  "lower your monthly payment|low down payment options|no application fee",
                  "rates from {p}.25%", (5, 7, 1)),
            _side("房贷|房贷转贷|首套房贷款|房屋抵押贷款|公积金贷款",
                  "最快当天审批|多家银行比价|降低月供|首付低至两成|免申请费",
                  "利率低至{p}.1%", (3, 4, 1))),
        "office_space": Category(
            _side("office space for lease|coworking desks|private offices|meeting room rentals|"
                  "virtual office addresses",
                  "move-in ready|month-to-month terms|prime downtown locations|24/7 access|"
                  "high-speed Wi-Fi included",
                  "from ${p}/month", (199, 899, 100), EN_IN),
            _side("写字楼出租|联合办公工位|独立办公室|会议室租用|注册地址",
                  "拎包办公|按月租|核心商圈|24小时出入|含高速Wi-Fi",
                  "{p}元/月起", (799, 2999, 200), ZH_IN)),
    },
    "electronics": {
        "smartphones": Category(
            _side("5G smartphones|unlocked phones|refurbished phones|budget Android phones|"
                  "foldable phones",
                  "trade in your old phone for credit|free screen protector|"
                  "pay monthly with 0% interest|2-year warranty|ships in 24 hours",
                  "from ${p}", (199, 999, 100)),
            _side("5G手机|全网通手机|官方翻新机|千元机|折叠屏手机",
                  "以旧换新最高抵2000|送钢化膜|12期免息|两年质保|24小时发货",
                  "{p}元起", (999, 5999, 500))),
        "laptops": Category(
            _side("gaming laptops|thin and light laptops|student laptops|business ultrabooks|"
                  "2-in-1 laptops",
                  "up to 18-hour battery life|RTX graphics|student discount of 10%|"
                  "custom builds|free shipping and returns",
                  "from ${p}", (499, 1999, 100)),
            _side("游戏本|轻薄本|学生笔记本|商务笔记本|二合一平板电脑",
                  "续航18小时|RTX独显|学生专享9折|支持定制配置|包邮包退",
                  "{p}元起", (2999, 9999, 500))),
        "headphones": Category(
            _side("noise-cancelling headphones|wireless earbuds|sports earphones|"
                  "studio headphones|gaming headsets",
                  "40 hours of battery|active noise cancellation|sweatproof design|"
                  "hi-res audio|30-day free returns",
                  "from ${p}", (29, 349, 20)),
            _side("降噪耳机|真无线耳机|运动耳机|监听耳机|电竞耳机",
                  "40小时超长续航|主动降噪|防汗防水|Hi-Res高解析音质|30天无忧退货",
                  "{p}元起", (99, 1999, 100))),
        "smart_home": Category(
            _side("smart bulbs|video doorbells|smart thermostats|robot vacuums|smart speakers",
                  "control everything from your phone|works with voice assistants|"
                  "easy 5-minute setup|save up to 20% on energy|no monthly subscription",
                  "from ${p}", (19, 399, 20)),
            _side("智能灯泡|可视门铃|智能温控器|扫地机器人|智能音箱",
                  "手机App远程控制|支持语音控制|5分钟轻松安装|省电20%|无需月费",
                  "{p}元起", (49, 2999, 150))),
        "cameras": Category(
            _side("mirrorless cameras|action cameras|instant cameras|camera lenses|"
                  "drones with 4K cameras",
                  "4K video at 60fps|in-body stabilization|a free lens in the bundle|"
                  "trade-in bonus|free photography class",
                  "from ${p}", (99, 1499, 100)),
            _side("微单相机|运动相机|拍立得|相机镜头|4K航拍无人机",
                  "4K 60帧录制|机身防抖|套机送镜头|以旧换新补贴|送摄影课程",
                  "{p}元起", (599, 8999, 600))),
    },
    "fashion": {
        "sneakers": Category(
            _side("running shoes|white leather sneakers|basketball shoes|trail running shoes|"
                  "slip-on sneakers",
                  "cushioned for all-day comfort|free returns within 60 days|"
                  "wide sizes available|limited-edition colorways|made from recycled materials",
                  "from ${p}", (49, 179, 10)),
            _side("跑步鞋|小白鞋|篮球鞋|越野跑鞋|一脚蹬休闲鞋",
                  "缓震舒适|60天免费退换|宽楦可选|限量配色|环保材质",
                  "{p}元起", (199, 899, 50))),
        "dresses": Category(
            _side("summer dresses|cocktail dresses|maxi dresses|work dresses|"
                  "wedding guest dresses",
                  "new arrivals every week|sizes XS to 4X|free alterations|"
                  "breathable linen and cotton|style advice from real stylists",
                  "from ${p}", (29, 149, 10)),
            _side("夏季连衣裙|小礼服|长裙|通勤连衣裙|碎花裙",
                  "每周上新|XS到4XL全尺码|免费改衣|透气棉麻|搭配师一对一推荐",
                  "{p}元起", (99, 599, 50))),
        "menswear": Category(
            _side("men's suits|chinos and dress shirts|men's jackets|tailored blazers|"
                  "men's basics",
                  "tailored fit in 3 days|free hemming|wrinkle-free fabric|"
                  "bundle 3 shirts and save|made-to-measure online",
                  "from ${p}", (39, 399, 20), EN_IN),
            _side("男士西装|商务衬衫|男士夹克|定制西服|男装基础款",
                  "3天量身定制|免费修改裤长|免烫面料|3件更优惠|线上量体定制",
                  "{p}元起", (129, 1999, 100), ZH_IN)),
        "handbags": Category(
            _side("leather handbags|crossbody bags|tote bags|designer-inspired purses|"
                  "laptop bags",
                  "genuine leather|free monogramming|lifetime repairs|fits a 15-inch laptop|"
                  "new colors for the season",
                  "from ${p}", (39, 299, 20)),
            _side("真皮手提包|斜挎包|托特包|通勤包|电脑包",
                  "头层牛皮|免费刻字|终身保修|可装15寸电脑|当季新色",
                  "{p}元起", (159, 1299, 100))),
        "kids_clothing": Category(
            _side("kids' clothes|baby onesies|school uniforms|kids' winter coats|"
                  "toddler pajamas",
                  "soft organic cotton|sizes from newborn to 14|durable enough for the playground|"
                  "buy 3 get 1 free|easy returns",
                  "from ${p}", (9, 59, 5)),
            _side("童装|婴儿连体衣|校服|儿童羽绒服|宝宝睡衣",
                  "A类纯棉面料|0到14岁全尺码|耐穿耐洗|买3件送1件|7天无理由退换",
                  "{p}元起", (39, 399, 30))),
    },
    "health": {
        "fitness_gym": Category(
            _side("gym memberships|personal training|yoga classes|HIIT bootcamps|"
                  "home workout programs",
                  "no joining fee this month|open 24/7|first class free|"
                  "trainers who build a plan around you|cancel anytime",
                  "from ${p}/month", (10, 49, 5), EN_IN),
            _side("健身房会员|私教课|瑜伽课|燃脂训练营|居家健身课程",
                  "本月免入会费|24小时营业|首节体验课免费|私教定制计划|随时可退",
                  "{p}元/月起", (99, 399, 50), ZH_IN)),
        "dental": Category(
            _side("teeth cleaning|teeth whitening|dental implants|clear aligners|"
                  "emergency dental care",
                  "same-day appointments|most insurance accepted|painless treatment options|"
                  "0% financing|evening and weekend hours",
                  "from ${p}", (59, 299, 20), EN_IN),
            _side("洗牙|牙齿美白|种植牙|隐形矫正|牙疼急诊",
                  "当天可约|支持医保|无痛治疗|分期0利息|晚间周末也营业",
                  "{p}元起", (99, 4999, 300), ZH_IN)),
        "telemedicine": Category(
            _side("online doctor visits|virtual urgent care|online therapy|"
                  "prescription refills online|24/7 nurse hotline",
                  "see a doctor in 15 minutes|licensed physicians|no insurance needed|"
                  "prescriptions sent to your pharmacy|private and secure",
                  "visits from ${p}", (19, 79, 10)),
            _side("在线问诊|视频看医生|心理咨询|线上复诊开药|24小时护士热线",
                  "15分钟接诊|三甲医生在线|无需排队挂号|药品送货上门|隐私安全保障",
                  "{p}元起", (9, 49, 10))),
        "vitamins": Category(
            _side("daily multivitamins|vitamin D supplements|protein powder|probiotics|"
                  "omega-3 fish oil",
                  "third-party tested|personalized vitamin packs|subscribe and save 15%|"
                  "non-GMO ingredients|easy-to-swallow capsules",
                  "from ${p}", (9, 49, 5)),
            _side("复合维生素|维生素D|蛋白粉|益生菌|深海鱼油",
                  "第三方检测|个性化定制|订阅立减15%|非转基因原料|小颗粒易吞服",
                  "{p}元起", (49, 299, 30))),
        "eye_care": Category(
            _side("eye exams|prescription glasses|contact lenses|LASIK consultations|"
                  "blue light glasses",
                  "frames from top designers|glasses ready in 1 hour|"
                  "a free eye exam with any purchase|try 5 frames at home|"
                  "vision insurance accepted",
                  "from ${p}", (29, 199, 20), EN_IN),
            _side("验光配镜|近视眼镜|隐形眼镜|近视手术|防蓝光眼镜",
                  "大牌镜框|1小时取镜|配镜送免费验光|在家试戴5副|支持医保卡",
                  "{p}元起", (99, 1999, 100), ZH_IN)),
    },
    "games": {
        "mobile_games": Category(
            _side("mobile puzzle games|idle RPGs|match-3 games|casual phone games|"
                  "strategy games for your phone",
                  "free to play|play offline anywhere|new levels every week|5-minute sessions|"
                  "join 10 million players"),
            _side("手游|消除类小游戏|放置RPG|休闲手游|策略手游",
                  "免费下载|离线也能玩|每周更新关卡|5分钟一局|千万玩家在线")),
        "console_games": Category(
            _side("console games|open-world adventure games|co-op shooters|racing games|"
                  "sports games for console",
                  "pre-order bonus included|4K at 60fps|play with friends online|"
                  "an award-winning story|deluxe edition on sale",
                  "from ${p}", (19, 69, 10)),
            _side("主机游戏|开放世界大作|合作射击游戏|赛车游戏|体育游戏",
                  "预购送限定皮肤|4K 60帧|好友联机|年度最佳剧情|豪华版限时特惠",
                  "{p}元起", (99, 399, 50))),
        "pc_games": Category(
            _side("PC games|strategy games for PC|indie games|MMORPGs|survival games",
                  "runs on older laptops|mod support|cross-play with console|"
                  "massive seasonal sale|free weekend trial",
                  "from ${p}", (9, 59, 10)),
            _side("端游|PC策略游戏|独立游戏|大型多人网游|生存建造游戏",
                  "低配电脑也流畅|支持MOD|与主机跨平台|季节大促|周末免费试玩",
                  "{p}元起", (29, 199, 30))),
        "board_games": Category(
            _side("board games|party card games|strategy board games|family game night sets|"
                  "tabletop RPG starter sets",
                  "perfect for 2 to 8 players|learn in 10 minutes|no screens needed|"
                  "new expansion out now|ships free over $40",
                  "from ${p}", (14, 79, 5), EN_IN),
            _side("桌游|聚会卡牌游戏|策略桌游|家庭桌游|剧本杀",
                  "2到8人都能玩|10分钟学会|远离屏幕|新扩展上市|满199包邮",
                  "{p}元起", (39, 299, 20), ZH_IN)),
    },
    "home_services": {
        "cleaning": Category(
            _side("house cleaning|deep cleaning|move-out cleaning|carpet cleaning|"
                  "weekly maid service",
                  "background-checked cleaners|eco-friendly products|book in 60 seconds|"
                  "100% satisfaction guarantee|the same cleaner every visit",
                  "from ${p}", (79, 249, 20), EN_IN),
            _side("家庭保洁|深度清洁|开荒保洁|地毯清洗|钟点工",
                  "阿姨持证上岗|环保清洁剂|1分钟下单|不满意免费返工|固定阿姨服务",
                  "{p}元起", (39, 299, 20), ZH_IN)),
        "plumbing": Category(
            _side("emergency plumbers|leak repair|drain unclogging|water heater installation|"
                  "toilet repair",
                  "licensed plumbers on call 24/7|arrival within 60 minutes|"
                  "upfront flat-rate pricing|no call-out fee|work guaranteed for 1 year",
                  "from ${p}", (49, 199, 20), EN_IN),
            _side("水管维修|漏水检测|管道疏通|热水器安装|马桶维修",
                  "24小时上门|60分钟内到达|一口价不加价|免上门费|维修保修1年",
                  "{p}元起", (30, 200, 20), ZH_IN)),
        "moving": Category(
            _side("local movers|long-distance moving|packing services|student moves|"
                  "storage units",
                  "free in-home estimate|fully insured moves|no surprise fees|"
                  "boxes and packing supplies included|weekend moves available",
                  "from ${p}", (99, 499, 50), EN_IN),
            _side("搬家服务|长途搬家|打包服务|学生搬家|仓储服务",
                  "免费上门估价|全程保险|不坐地起价|免费提供纸箱|周末可约",
                  "{p}元起", (199, 999, 100), ZH_IN)),
        "pest_control": Category(
            _side("pest control|termite inspection|bed bug treatment|rodent removal|"
                  "cockroach treatment",
                  "pet-safe treatments|free re-treatment if pests return|same-day inspections|"
                  "licensed technicians|quarterly protection plans",
                  "from ${p}", (79, 299, 20), EN_IN),
            _side("除虫服务|白蚁防治|除螨|灭鼠|灭蟑螂",
                  "宠物安全药剂|复发免费再处理|当天上门勘察|持证技师施工|季度防护套餐",
                  "{p}元起", (99, 599, 50), ZH_IN)),
        "renovation": Category(
            _side("kitchen remodeling|bathroom renovation|flooring installation|"
                  "interior painting|basement finishing",
                  "free 3D design|fixed quotes with no surprises|5-year workmanship warranty|"
                  "finished in as little as 2 weeks|financing available",
                  "from ${p}", (2999, 19999, 1000), EN_IN),
            _side("厨房翻新|卫生间改造|地板铺装|墙面刷新|旧房翻新",
                  "免费3D设计|报价透明不增项|5年质保|最快2周完工|装修分期",
                  "{p}元起", (9800, 59800, 5000), ZH_IN)),
    },
}

CITIES = {
    "en": ("New York", "Chicago", "Los Angeles", "Austin", "Seattle", "Boston", "Denver",
           "Miami", "Atlanta", "Toronto", "London", "Sydney"),
    "zh": ("北京", "上海", "广州", "深圳", "成都", "杭州", "武汉", "西安", "南京", "重庆"),
}

OFFERS = {
    "en": ("Limited-time offer!", "Get started today.", "New customers save 15%.",
           "Offer ends Sunday.", "Join 1M+ happy customers.", "Learn more online.",
           "Don't miss out!", "Today only: extra 10% off.", "Sign up in 2 minutes."),
    "zh": ("限时优惠", "新用户立减20元", "本周末截止", "立即咨询", "点击了解详情", "百万用户的选择",
           "今日下单享9折", "名额有限", "免费领取体验", "先到先得"),
}

TEMPLATES = {
    "en": (
        "{Product} from {brand} | {Point}. {offer}",
        "{brand} {product} {place} – {price}. {Point}.",
        "Need {product}? {brand} has you covered: {point}. {offer}",
        "{brand}: {Product}, {price}. {Point}!",
        "Top-rated {product} {place}. {Point} with {brand}. {offer}",
        "{Product} – {point}. {Price} at {brand}. {offer}",
        "Why pay more for {product}? {brand}: {point}, {price}.",
        "Discover {product} at {brand}. {Point} — {offer}",
    ),
    "zh": (
        "{brand}{product}，{point}，{offer}",
        "{place}{product}{price}，{brand}{point}",
        "找{product}，上{brand}！{point}",
        "【{brand}】{product}｜{point}，{offer}",
        "{brand}{product}：{point}，{price}",
        "{offer}！{brand}{product}，{point}",
        "{brand} App新人专享：{product}{price}，{point}",
        "{place}的{product}哪家好？{brand}{point}",
    ),
}

URL_FORMATS = {
    "en": (" Visit {slug}.com", " https://www.{slug}.com/{category}"),
    "zh": (" 官网：www.{slug}.cn", " 网址：{slug}.com"),
}

QUERIES: tuple[Query, ...] = (
    Query("q01", "cheap way to get to Tokyo", "en", "travel", ("flights",), ("tour_packages",)),
    Query("q02", "somewhere to stay near the beach this weekend", "en", "travel", ("hotels",),
          ("tour_packages",)),
    Query("q03", "vacation on a big ship", "en", "travel", ("cruises",), ("tour_packages",)),
    Query("q04", "teach my kid to make video games", "en", "education", ("coding_classes",),
          ("kids_tutoring",)),
    Query("q05", "borrow money to cover bills until payday", "en", "finance",
          ("personal_loans",), ("credit_cards",)),
    Query("q06", "where to park my cash and earn interest", "en", "finance", ("savings",),
          ("investing",)),
    Query("q07", "protect my family if something happens to me", "en", "finance",
          ("insurance",), ("savings",)),
    Query("q08", "water dripping under the kitchen sink", "en", "home_services", ("plumbing",),
          ("renovation",)),
    Query("q09", "get rid of mice in the garage", "en", "home_services", ("pest_control",),
          ("cleaning",)),
    Query("q10", "help hauling furniture to my new place", "en", "home_services", ("moving",),
          ("cleaning",)),
    Query("q11", "battery car that goes far on one charge", "en", "automotive",
          ("electric_vehicles",), ("new_cars",)),
    Query("q12", "squeaking noise when I hit the brakes", "en", "automotive", ("car_repair",)),
    Query("q13", "my face feels tight and flaky in winter", "en", "beauty", ("skincare",),
          ("makeup",)),
    Query("q14", "dinner brought to my door tonight", "en", "food_delivery",
          ("restaurant_delivery",), ("meal_kits",)),
    Query("q15", "block out the train noise on my commute", "en", "electronics",
          ("headphones",), ("smartphones",)),
    Query("q16", "computer for editing videos on the go", "en", "electronics", ("laptops",),
          ("cameras",)),
    Query("q17", "place to live downtown on a monthly lease", "en", "real_estate",
          ("apartments_for_rent",), ("homes_for_sale",)),
    Query("q18", "lower what I pay each month on my house", "en", "real_estate", ("mortgages",),
          ("homes_for_sale",)),
    Query("q19", "shoes for a half marathon", "en", "fashion", ("sneakers",)),
    Query("q20", "talk to a doctor without leaving home", "en", "health", ("telemedicine",)),
    Query("q21", "something fun to play on my phone during the commute", "en", "games",
          ("mobile_games",), ("console_games", "pc_games")),
    Query("q22", "score higher on the GMAT", "en", "education", ("test_prep",),
          ("online_degrees",)),
    Query("q23", "孩子学编程", "zh", "education", ("coding_classes",), ("kids_tutoring",)),
    Query("q24", "去东京怎么最便宜", "zh", "travel", ("flights",), ("tour_packages",)),
    Query("q25", "出国玩要办什么手续", "zh", "travel", ("visas",), ("tour_packages",)),
    Query("q26", "急用钱怎么办", "zh", "finance", ("personal_loans",), ("credit_cards",)),
    Query("q27", "闲钱放哪里收益高", "zh", "finance", ("savings", "investing")),
    Query("q28", "想买辆别人开过几年的车", "zh", "automotive", ("used_cars",), ("new_cars",)),
    Query("q29", "周末想开车出去玩但自己没车", "zh", "automotive", ("car_rental",)),
    Query("q30", "脸上老是冒痘怎么办", "zh", "beauty", ("skincare",), ("makeup",)),
    Query("q31", "想换个好看的发型", "zh", "beauty", ("hair_salon",)),
    Query("q32", "懒得做饭", "zh", "food_delivery", ("restaurant_delivery",),
          ("meal_kits", "groceries")),
    Query("q33", "下午犯困想喝点东西提神", "zh", "food_delivery", ("coffee_tea",),
          ("restaurant_delivery",)),
    Query("q34", "刚毕业找个地方住", "zh", "real_estate", ("apartments_for_rent",)),
    Query("q35", "拍照好看的手机", "zh", "electronics", ("smartphones",), ("cameras",)),
    Query("q36", "躺在床上关灯", "zh", "electronics", ("smart_home",)),
    Query("q37", "夏天穿的裙子", "zh", "fashion", ("dresses",), ("handbags",)),
    Query("q38", "牙疼得睡不着", "zh", "health", ("dental",), ("telemedicine",)),
    Query("q39", "想减掉肚子上的肉", "zh", "health", ("fitness_gym",), ("vitamins",)),
    Query("q40", "看东西模糊想摘掉眼镜", "zh", "health", ("eye_care",)),
    Query("q41", "朋友聚会玩点不用屏幕的", "zh", "games", ("board_games",)),
    Query("q42", "新出的主机大作", "zh", "games", ("console_games",), ("pc_games",)),
    Query("q43", "过年前家里大扫除找人", "zh", "home_services", ("cleaning",), ("pest_control",)),
    Query("q44", "厨房太旧想重新弄一下", "zh", "home_services", ("renovation",), ("plumbing",)),
)

_URL = re.compile(r"(?:https?://|www\.)\S+|\S+\.(?:com|cn)\S*", re.IGNORECASE)
_NOT_KEPT = re.compile(r"[^a-z0-9\u4e00-\u9fa5]+")


def dedup_keys(text: str) -> tuple[str, str]:
    """Two normalised forms of ``text``; an ad is a duplicate if either was seen before.

    The first lower-cases and collapses every non-alphanumeric run (what the catalogue tests
    check); the second also drops URLs and non-ASCII letters, like the project's own text
    normalisation, so ads never differ only by a URL, an emoji or an accent.
    """
    lowered = text.lower()
    loose = " ".join("".join(c if c.isalnum() else " " for c in lowered).split())
    strict = " ".join(_NOT_KEPT.sub(" ", _URL.sub(" ", lowered)).split())
    return loose, strict


def slugify(name: str) -> str:
    """ASCII lower-case slug for a brand's web address ("Lumière Lab" -> "lumierelab")."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", ascii_name.lower())


def brands(industry: str, language: str) -> list[tuple[str, str]]:
    """(display name, URL slug) pairs for an industry's invented brands."""
    en, zh = BRANDS[industry]
    if language == "en":
        return [(name, slugify(name)) for name in en.split("|")]
    return [tuple(entry.split("/")) for entry in zh.split("|")]  # type: ignore[misc]


def length_ok(text: str, language: str) -> bool:
    """English: 8-30 words; Chinese: 10-40 characters not counting white space."""
    if language == "en":
        low, high = EN_WORDS
        return low <= len(text.split()) <= high
    low, high = ZH_CHARS
    return low <= len("".join(text.split())) <= high


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def compose_ad(rng: random.Random, language: str, industry: str,
               category: str) -> tuple[str, str]:
    """Draw one ad for a category, a template filled with random vocabulary: (text, brand)."""
    side: Side = getattr(CATEGORIES[industry][category], language)
    usable = [t for t in TEMPLATES[language]
              if not ({"price", "Price"} & _fields(t) and side.price is None)
              and not ("place" in _fields(t) and side.place is None)]
    template = rng.choice(usable)
    brand, slug = rng.choice(brands(industry, language))
    product, point = rng.choice(side.products), rng.choice(side.points)
    start, stop, step = side.span
    price = side.price.format(p=rng.randrange(start, stop + 1, step)) if side.price else ""
    text = template.format(
        brand=brand, product=product, Product=_capitalise(product), point=point,
        Point=_capitalise(point), price=price, Price=_capitalise(price),
        offer=rng.choice(OFFERS[language]),
        place=side.place.format(city=rng.choice(CITIES[language])) if side.place else "",
    )
    if rng.random() < URL_RATE:
        path = category.replace("_", "-")
        text += rng.choice(URL_FORMATS[language]).format(slug=slug, category=path)
    if rng.random() < EMOJI_RATE:
        text = f"{EMOJI[industry]} {text}"
    return text, brand


def generate_ads(rng: random.Random) -> list[dict[str, str]]:
    """All ads, ordered by language, industry and number; categories taken in turn."""
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    for language in ("en", "zh"):
        for industry, categories in CATEGORIES.items():
            names = list(categories)
            for number in range(1, ADS_PER_INDUSTRY + 1):
                category = names[(number - 1) % len(names)]
                text, brand = _unique_ad(rng, seen, language, industry, category)
                rows.append({
                    "ad_id": f"{language}-{industry}-{number:04d}", "text": text,
                    "industry": industry, "category": category, "language": language,
                    "advertiser": brand,
                })
    return rows


def _unique_ad(rng: random.Random, seen: set[str], language: str, industry: str,
               category: str) -> tuple[str, str]:
    """Draw until an ad of the right length that no earlier ad duplicates comes up."""
    for _ in range(MAX_TRIES):
        text, brand = compose_ad(rng, language, industry, category)
        keys = dedup_keys(text)
        if length_ok(text, language) and not any(key in seen for key in keys):
            seen.update(keys)
            return text, brand
    raise RuntimeError(f"no new unique ad for {language}/{industry}/{category}")


def generate_qrels(ads: list[dict[str, str]]) -> list[tuple[str, str, int]]:
    """Graded labels from categories: 2 for a query's exact categories, 1 for related ones."""
    qrels: list[tuple[str, str, int]] = []
    for query in QUERIES:
        for ad in ads:
            if ad["industry"] != query.industry:
                continue
            if ad["category"] in query.exact:
                qrels.append((query.query_id, ad["ad_id"], 2))
            elif ad["category"] in query.related:
                qrels.append((query.query_id, ad["ad_id"], 1))
    return qrels


def check_vocabulary() -> None:
    """Fail early on a query naming a category that does not exist."""
    for query in QUERIES:
        known = CATEGORIES[query.industry]
        for category in query.exact + query.related:
            if category not in known:
                raise ValueError(f"{query.query_id}: unknown category {category!r}")


def write_ads(path: Path, ads: list[dict[str, str]]) -> None:
    columns = ["ad_id", "text", "industry", "category", "language", "advertiser"]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(ads)


def write_queries(path: Path) -> None:
    lines = [json.dumps({"query_id": q.query_id, "text": q.text, "language": q.language},
                        ensure_ascii=False) for q in QUERIES]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_qrels(path: Path, qrels: list[tuple[str, str, int]]) -> None:
    lines = ["query_id\tad_id\tscore"] + [f"{q}\t{a}\t{s}" for q, a, s in qrels]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(out_dir: str | Path | None = None) -> Path:
    """Write ads.csv, queries.jsonl and qrels.tsv into ``out_dir`` (default: beside this file)."""
    out = Path(out_dir) if out_dir is not None else Path(__file__).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    check_vocabulary()
    ads = generate_ads(random.Random(SEED))
    write_ads(out / "ads.csv", ads)
    write_queries(out / "queries.jsonl")
    write_qrels(out / "qrels.tsv", generate_qrels(ads))
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="output folder (default: this folder)")
    main(parser.parse_args().out)
